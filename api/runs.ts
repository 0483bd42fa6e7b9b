/** Status, list and cancel of runs (docs/api.md#part-b-durable-run-extensions), read from Temporal. */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import { z } from 'zod';
import { ApiError, invalidRequest, searchAttributesMissing } from './api-error';
import { AGENT_RUN_WORKFLOW, summaryQuery, type RunStatus, type RunSummary } from '../contract/run-contract';
import { runIdForWorkflow, workflowIdFor } from '../common/run-ids';
import type { Caller } from './auth';
import { ownerClause, owns } from './ownership';
import { AGENT_AWAITING_APPROVAL } from '../contract/search-attributes';

/** The run-list filter of runs with a tool call waiting for a reviewer (docs/api.md#b5-approvals). */
const AWAITING_APPROVAL = 'awaiting_approval';

const STATUS_OF: Record<string, RunStatus> = {
  RUNNING: 'running',
  CONTINUED_AS_NEW: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  TERMINATED: 'failed',
  TIMED_OUT: 'failed',
  CANCELLED: 'cancelled',
};
const TEMPORAL_STATUSES: Record<RunStatus, string[]> = {
  running: ['Running'],
  completed: ['Completed'],
  failed: ['Failed', 'Terminated', 'TimedOut'],
  cancelled: ['Canceled'],
};

/** How many runs a listing looks at, at most, to find the caller's (when runs carry no AgentApiKeyId to filter on). */
const MAX_LIST_SCAN = 1000;

export type RunView = Omit<RunSummary, 'runId'> & { id: string; workflow_id: string };

/** Temporal's description of a run, whoever started it; undefined when there is no such run (other errors are thrown). */
export function describeIfAny(client: Client, runId: string): Promise<WorkflowExecutionDescription | undefined> {
  return client.workflow
    .getHandle(workflowIdFor(runId))
    .describe()
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
}

/**
 * Temporal's description of a run the caller may see; 404 when there is no
 * such run, and the very same 404 when another key started it.
 */
export async function describe(client: Client, caller: Caller, runId: string): Promise<WorkflowExecutionDescription> {
  const description = await describeIfAny(client, runId);
  if (!description || !owns(caller, description)) throw new ApiError(404, 'not_found_error', `no run with id '${runId}'`);
  return description;
}

/** The run's status and totals; 404 when there is no such run. */
export async function readRun(client: Client, caller: Caller, runId: string): Promise<RunView> {
  const description = await describe(client, caller, runId);
  const handle = client.workflow.getHandle(description.workflowId);
  // The totals live in the workflow; a query needs a worker, so give it a deadline.
  const summary = await client.connection.withDeadline(Date.now() + 5_000, () => handle.query(summaryQuery)).catch(() => undefined);
  const { runId: _, ...rest } = summary ?? fallbackSummary(description, runId);
  // Temporal's own status wins (it also covers runs ended from outside the loop), except while a run that
  // has ended its loop still delivers its webhook.
  const status = description.status.name === 'RUNNING' ? rest.status : (STATUS_OF[description.status.name] ?? rest.status);
  return { id: runId, workflow_id: description.workflowId, ...rest, status };
}

/** What Temporal itself knows of a run, without asking the workflow. */
function fallbackSummary(d: Pick<WorkflowExecutionInfo, 'status' | 'startTime' | 'memo'>, runId: string): RunSummary {
  return {
    runId,
    status: STATUS_OF[d.status.name] ?? 'running',
    model: typeof d.memo?.model === 'string' ? d.memo.model : '',
    created: Math.floor(d.startTime.getTime() / 1000),
    usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    model_calls: 0,
    tool_calls: {},
    events: 0,
    error: null,
    message: null,
    pending_approvals: [],
    decided_approvals: [],
  };
}

export async function cancelRun(client: Client, caller: Caller, runId: string): Promise<{ id: string; status: RunStatus | 'cancelling' }> {
  const description = await describe(client, caller, runId);
  if (description.status.name !== 'RUNNING') return { id: runId, status: STATUS_OF[description.status.name] ?? 'running' };
  // Cancelling twice is harmless: Temporal keeps one cancel request.
  await client.workflow.getHandle(description.workflowId).cancel();
  return { id: runId, status: 'cancelling' };
}

export type RunListItem = Pick<RunView, 'id' | 'workflow_id' | 'status' | 'model' | 'created'>;

const LIMIT = 'limit must be an integer between 1 and 100';
const RUN_STATUSES = Object.keys(TEMPORAL_STATUSES) as RunStatus[];
const LIST_STATUSES = [...RUN_STATUSES, AWAITING_APPROVAL] as const;

/** The query of GET /v1/agents/runs (also in /openapi.json). */
export const listRunsQuerySchema = z.object({
  limit: z.coerce.number({ error: LIMIT }).int(LIMIT).min(1, LIMIT).max(100, LIMIT).default(20).meta({ description: 'how many runs, 1 to 100' }),
  status: z
    .enum(LIST_STATUSES, { error: `status must be one of ${LIST_STATUSES.join(', ')}` })
    .optional()
    .meta({ description: 'only runs of this status (awaiting_approval: running runs with a tool call waiting for a reviewer)' }),
});

/** Recent runs of the caller (of every key for an admin) through Temporal visibility, newest first. */
export async function listRuns(
  client: Client,
  caller: Caller,
  query: Record<string, unknown>,
  searchAttributes: boolean,
): Promise<{ data: RunListItem[] }> {
  const parsed = listRunsQuerySchema.safeParse(query);
  if (!parsed.success) throw invalidRequest(parsed.error.issues[0]?.message ?? 'the query is invalid');
  const { limit, status } = parsed.data;
  const filters = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`];
  if (status === AWAITING_APPROVAL) {
    if (!searchAttributes) {
      throw searchAttributesMissing(`status=${AWAITING_APPROVAL}`, [AGENT_AWAITING_APPROVAL]);
    }
    filters.push(`ExecutionStatus = 'Running' AND ${AGENT_AWAITING_APPROVAL.name} = true`);
  } else if (status) {
    filters.push(`(${TEMPORAL_STATUSES[status].map((s) => `ExecutionStatus = '${s}'`).join(' OR ')})`);
  }
  const owner = ownerClause(caller, searchAttributes);
  if (owner) filters.push(owner);
  const runs: RunListItem[] = [];
  let scanned = 0;
  for await (const info of client.workflow.list({ query: filters.join(' AND '), pageSize: limit })) {
    // Without the search attribute, other keys' runs are skipped here; the scan is bounded all the same.
    if (++scanned > MAX_LIST_SCAN) break;
    if (!owns(caller, info)) continue;
    const runId = runIdForWorkflow(info.workflowId);
    const { status: runStatus, model, created } = fallbackSummary(info, runId);
    runs.push({ id: runId, workflow_id: info.workflowId, status: runStatus, model, created });
    if (runs.length >= limit) break;
  }
  runs.sort((a, b) => b.created - a.created);
  return { data: runs };
}
