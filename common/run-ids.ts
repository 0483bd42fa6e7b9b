/**
 * A run is known to clients as `chatcmpl-<hex>` (the `id` of every completion
 * object) and to Temporal as `agent-run-<hex>`, so operators can tell in the UI
 * what a workflow is. The two map one-to-one.
 */
import { createHash, randomBytes } from 'node:crypto';

const RUN_ID = /^chatcmpl-([0-9a-f]{24})$/;

export function newRunId(): string {
  return `chatcmpl-${randomBytes(12).toString('hex')}`;
}

/** Same idempotency key from the same API key → same run id. */
export function runIdForIdempotencyKey(apiKeyId: string, idempotencyKey: string): string {
  const digest = createHash('sha256').update(`${apiKeyId}\0${idempotencyKey}`).digest('hex');
  return `chatcmpl-${digest.slice(0, 24)}`;
}

export function isRunId(value: string): boolean {
  return RUN_ID.test(value);
}

export function workflowIdFor(runId: string): string {
  const match = RUN_ID.exec(runId);
  if (!match) throw new Error(`not a run id: ${runId}`);
  return `agent-run-${match[1]}`;
}

export function runIdForWorkflow(workflowId: string): string {
  return `chatcmpl-${workflowId.replace(/^agent-run-/, '')}`;
}
