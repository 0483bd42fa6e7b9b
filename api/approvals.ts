/**
 * POST /v1/agents/runs/{id}/approvals/{tool_call_id} (docs/api.md#b5-approvals):
 * a reviewer's decision, handed to the run as a validated Temporal Update.
 * The workflow's validator refuses an unknown call (404) and a decided one
 * (409) before anything is written to the run's history.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { describeIssue } from '../contract/request-schema';
import {
  APPROVAL_ALREADY_DECIDED,
  APPROVAL_NOT_FOUND,
  decideApprovalUpdate,
  summaryQuery,
  type DecideApprovalArgs,
  type DecidedApproval,
} from '../contract/run-contract';
import { ApiError, invalidRequest } from './api-error';
import type { Caller } from './auth';
import { describe } from './runs';

/** The longest reason a reviewer may give (the workflow's validator holds the same bound). */
const MAX_REASON_CHARS = 2000;
/** A decision needs a worker to run the update; past this the API answers 503 instead of holding the request. */
const DECIDE_DEADLINE_MS = 30_000;

/** The body of POST /v1/agents/runs/{id}/approvals/{tool_call_id} (also in /openapi.json). */
export const decisionSchema = z.object({
  decision: z.enum(['approve', 'deny'], { error: 'must be "approve" or "deny"' }),
  reason: z
    .string({ error: 'must be a string' })
    .max(MAX_REASON_CHARS, `must be at most ${MAX_REASON_CHARS} characters`)
    .optional()
    .meta({ description: 'why; a denial hands it to the model' }),
});

export async function decideApproval(client: Client, caller: Caller, runId: string, toolCallId: string, body: unknown): Promise<DecidedApproval> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidRequest('the request body must be a JSON object');
  const parsed = decisionSchema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw invalidRequest(parsed.error.issues[0] ? describeIssue(parsed.error.issues[0]) : 'the request body is invalid');
  const args: DecideApprovalArgs = {
    toolCallId,
    decision: parsed.data.decision,
    ...(parsed.data.reason !== undefined ? { reason: parsed.data.reason } : {}),
  };

  const description = await describe(client, caller, runId);
  const handle = client.workflow.getHandle(description.workflowId);
  const notFound = () => new ApiError(404, 'not_found_error', `run '${runId}' has no tool call '${toolCallId}' waiting for approval`);
  const decided = (message: string) => new ApiError(409, 'conflict_error', message);
  if (description.status.name !== 'RUNNING') {
    // An ended run takes no update: tell a decided call (409) from an unknown one (404) by its final summary.
    const summary = await client.connection.withDeadline(Date.now() + 5_000, () => handle.query(summaryQuery)).catch(() => undefined);
    const earlier = summary?.decided_approvals.find((a) => a.tool_call_id === toolCallId);
    if (earlier) throw decided(`tool call '${toolCallId}' was already decided (${earlier.decision}, by ${earlier.decided_by})`);
    throw notFound();
  }
  try {
    return await client.connection.withDeadline(Date.now() + DECIDE_DEADLINE_MS, () => handle.executeUpdate(decideApprovalUpdate, { args: [args] }));
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === APPROVAL_NOT_FOUND) throw notFound();
    if (cause instanceof ApplicationFailure && cause.type === APPROVAL_ALREADY_DECIDED) throw decided(cause.message);
    if (err instanceof WorkflowNotFoundError) throw notFound(); // the run ended meanwhile
    throw new ApiError(503, 'server_error', `the decision could not be delivered to the run: ${(err as Error).message}`, { cause: err });
  }
}
