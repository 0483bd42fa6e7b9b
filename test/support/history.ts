import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { workflowIdFor } from '../../common/run-ids';

type History = temporal.api.history.v1.IHistory;

/** In a history, a payload kept in PAYLOAD_STORE_DIR is a reference of this message type (the SDK's external storage). */
export const STORED_PAYLOAD_REFERENCE = 'temporal.api.sdk.v1.ExternalStorageReference';

/**
 * A history as searchable text: Temporal's JSON form, with every payload's
 * bytes (`data`, and the `metadata` values) decoded from base64 to the text
 * they hold, the raw form kept beside it. `JSON.stringify` on a history does
 * not do this: bytes come out base64 there, so a secret in a payload is missed.
 */
export function historyAsText(history: History): string {
  const decoded = (value: string) => `${value} ${Buffer.from(value, 'base64').toString('utf8')}`;
  const walk = (value: unknown, key?: string): unknown => {
    if (typeof value === 'string') return key === 'data' ? decoded(value) : value;
    if (Array.isArray(value)) return value.map((v) => walk(v));
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
          k,
          k === 'metadata' && v && typeof v === 'object'
            ? Object.fromEntries(Object.entries(v).map(([mk, mv]) => [mk, typeof mv === 'string' ? decoded(mv) : mv]))
            : walk(v, k),
        ]),
      );
    }
    return value;
  };
  return JSON.stringify(walk(JSON.parse(historyToJSON(history))));
}

/**
 * The histories of every execution of a workflow, oldest first: a run that
 * continued-as-new has several, each started by the one before (followed
 * through the start events, so visibility's lag does not matter).
 */
export async function executionHistories(client: Client, workflowId: string): Promise<History[]> {
  const histories: History[] = [];
  let runId: string | undefined;
  do {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    histories.unshift(history);
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return histories;
}

/** Every execution's history of a workflow as text, payloads decoded, so a test can search what Temporal actually stores. */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  return (await executionHistories(client, workflowId)).map(historyAsText).join('\n');
}

/** The histories of every agent run on the server, concatenated. */
export async function allRunHistories(client: Client): Promise<string> {
  let text = '';
  for await (const w of client.workflow.list({ query: `WorkflowType = 'agentRun'` })) {
    text += await historyText(client, w.workflowId);
  }
  return text;
}

/** The input the run's workflow was started with (the API's ResolvedTools, the messages, ...), as JSON. */
export async function workflowInput(client: Client, runId: string): Promise<any> {
  const [first] = await executionHistories(client, workflowIdFor(runId));
  const data = first?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  if (!data) throw new Error(`the history of ${runId} starts without an input`);
  return JSON.parse(Buffer.from(data).toString('utf8'));
}

/** The size of the largest payload a history holds itself (a reference counts as its own small size). */
export function largestPayloadBytes(history: History): number {
  let largest = 0;
  JSON.stringify(JSON.parse(historyToJSON(history)), (key, value: unknown) => {
    if (key === 'data' && typeof value === 'string') largest = Math.max(largest, Buffer.from(value, 'base64').length);
    return value;
  });
  return largest;
}

/** Every payload in a payload store folder (PAYLOAD_STORE_DIR) as text: each file is an encoded Payload whose JSON is readable. */
export function storedPayloadsText(dir: string): { files: number; text: string } {
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  return { files: names.length, text: names.map((name) => fs.readFileSync(path.join(dir, name)).toString('utf8')).join('\n') };
}
