import type { Client } from '@temporalio/client';
import { workflowIdFor } from '../../common/run-ids';

/**
 * A workflow's whole history as text, payloads decoded (they are JSON bytes),
 * so a test can search it for what Temporal actually stores.
 */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(history, (key, value) => {
    // Payload bytes come back base64-encoded (or as Buffers): decode both.
    if (key === 'data' && typeof value === 'string') return Buffer.from(value, 'base64').toString('utf8');
    if (value && value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data).toString('utf8');
    return value;
  });
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
  const history = await client.workflow.getHandle(workflowIdFor(runId)).fetchHistory();
  const data = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  if (!data) throw new Error(`the history of ${runId} starts without an input`);
  return JSON.parse(Buffer.from(data).toString('utf8'));
}
