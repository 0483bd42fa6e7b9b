/**
 * Validates a POST /v1/agents/heroku body and starts (or, with an
 * Idempotency-Key, attaches to) the run's workflow; returns the run id and
 * the run's first stream poll, which rides on the start (update-with-start:
 * one request to Temporal, and the first workflow task already holds the
 * poll). The tools are validated by the catalogue (catalog/), whose
 * ToolValidationError the app answers with a 400.
 */
import { createHash } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
  type Client,
} from '@temporalio/client';
import { resolveTools, type ToolCatalog } from '../catalog/resolve-tools';
import type { ApiConfig } from '../common/config';
import { newRunId, runIdForIdempotencyKey, workflowIdFor } from '../common/run-ids';
import { agentRequestSchema, describeIssue, type AgentRequest } from '../contract/request-schema';
import {
  AGENT_RUN_WORKFLOW,
  TASK_QUEUE,
  waitForEventsUpdate,
  type AgentRunInput,
  type AgentRunWorkflow,
  type EventBatch,
} from '../contract/run-contract';
import { AGENT_API_KEY_ID, AGENT_MODEL, AGENT_TOOLS, AGENT_TOTAL_TOKENS } from '../contract/search-attributes';
import { resolveWebhookTarget, WebhookTargetError } from '../common/webhook-target';
import { ApiError, invalidRequest } from './api-error';
import { describeIfAny } from './runs';
import { dailyBudgetOf } from './daily-budget';
import { POLL_TIMEOUT_MS } from './run-feeds';

/**
 * How long the start waits for a worker to accept the first stream poll (it rides on the start) before it
 * answers without it: so a POST gets its headers within seconds even while no worker runs.
 */
const FIRST_POLL_ACCEPTED_WITHIN_MS = 5_000;

export interface StartedRun {
  runId: string;
  /** The request asked for a background run (`"background": true`). */
  background: boolean;
  /** The answer to the stream poll sent with the start (after offset -1, with `feed`); absent when the run had already ended. */
  firstPoll?: Promise<EventBatch>;
}

export async function startRun(
  client: Client,
  config: ApiConfig,
  catalog: ToolCatalog,
  body: unknown,
  who: { apiKeyId: string; idempotencyKey?: string; feed: string; starting?: (runId: string) => void },
  searchAttributes: boolean,
): Promise<StartedRun> {
  const request = parseRequest(body);
  const keyBudget = await dailyBudgetOf(client, config, who.apiKeyId, searchAttributes);
  const input: Omit<AgentRunInput, 'runId'> = {
    model: chooseModel(config, request.model),
    messages: request.messages,
    tools: await resolveTools(request.tools ?? [], catalog),
    inference: {
      max_tokens: request.max_tokens_per_inference_request,
      temperature: request.temperature,
      top_p: request.top_p,
      stop: request.stop,
    },
    maxModelCalls: config.maxModelCalls,
    parallelToolCalls: config.parallelToolCalls,
    ...(request.webhook !== undefined
      ? { webhook: { url: await checkedWebhook(config, request.webhook), maxAttempts: config.webhookMaxAttempts } }
      : {}),
    ...budgetsOf(request),
    ...(keyBudget ? { keyBudget } : {}),
    searchAttributes,
  };
  const key = who.idempotencyKey?.trim();
  if (who.idempotencyKey !== undefined && !key) throw invalidRequest('Idempotency-Key must not be empty');
  const runId = key ? runIdForIdempotencyKey(who.apiKeyId, key) : newRunId();
  who.starting?.(runId);
  const requestHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');

  const startWorkflowOperation = new WithStartWorkflowOperation<AgentRunWorkflow>(AGENT_RUN_WORKFLOW, {
    taskQueue: TASK_QUEUE,
    workflowId: workflowIdFor(runId),
    args: [{ runId, ...input }],
    memo: { requestHash, apiKeyId: who.apiKeyId, model: input.model },
    staticSummary: summaryOf(input),
    ...(searchAttributes
      ? {
          typedSearchAttributes: [
            { key: AGENT_MODEL, value: input.model },
            { key: AGENT_API_KEY_ID, value: who.apiKeyId },
            { key: AGENT_TOOLS, value: input.tools.map((t) => t.name) },
            { key: AGENT_TOTAL_TOKENS, value: 0 },
          ],
        }
      : {}),
    ...(key ? { workflowIdConflictPolicy: 'USE_EXISTING', workflowIdReusePolicy: 'REJECT_DUPLICATE' } : { workflowIdConflictPolicy: 'FAIL' }),
  });
  let firstPoll: Promise<EventBatch> | undefined;
  try {
    // The poll is accepted with the run's first workflow task, so only once a worker takes it.
    const poll = await client.connection.withDeadline(Date.now() + FIRST_POLL_ACCEPTED_WITHIN_MS, () =>
      client.workflow.startUpdateWithStart(waitForEventsUpdate, {
        args: [{ after: -1, timeoutMs: POLL_TIMEOUT_MS, feed: who.feed }],
        startWorkflowOperation,
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      }),
    );
    firstPoll = poll.result();
    firstPoll.catch(() => undefined); // the feed reads its outcome; with a 409 below, nobody does
  } catch (err) {
    // With a key, a run that already ended cannot take the poll: attach to it all the same.
    const attaches = key && err instanceof WorkflowExecutionAlreadyStartedError;
    // No worker took the run's first task in time (none running, or all busy): the run has started all the same,
    // and its stream waits for it like any client's (the feed polls with the same feed id, which releases this poll).
    const waitsForAWorker = err instanceof WorkflowUpdateRPCTimeoutOrCancelledError && (await describeIfAny(client, runId)) !== undefined;
    if (!attaches && !waitsForAWorker) throw cannotStart(err);
  }
  const background = request.background === true;
  if (!key) return { runId, background, firstPoll };

  // With a key, the run may be an earlier one: it must have been started by the same body.
  const existing = await client.workflow.getHandle(workflowIdFor(runId)).describe();
  if (existing.memo?.requestHash !== requestHash) {
    throw new ApiError(409, 'idempotency_error', 'Idempotency-Key was already used with a different request body');
  }
  return { runId, background, firstPoll };
}

/** A webhook is refused (400) unless this server can sign it and its URL passes the SSRF guard. */
async function checkedWebhook(config: ApiConfig, url: string): Promise<string> {
  if (!config.webhooks.key) throw invalidRequest('webhook cannot be used: this server has no WEBHOOK_SECRET to sign webhooks with');
  try {
    return (await resolveWebhookTarget(url, config.webhooks.allowHosts)).url.href;
  } catch (err) {
    if (err instanceof WebhookTargetError) throw invalidRequest(err.message, { cause: err });
    throw err;
  }
}

/** Only the budgets a request sets: a run without them gets the input of older runs. */
function budgetsOf(request: AgentRequest): Pick<AgentRunInput, 'budgets'> {
  const budgets = {
    ...(request.max_total_tokens !== undefined ? { maxTotalTokens: request.max_total_tokens } : {}),
    ...(request.max_duration_seconds !== undefined ? { maxDurationSeconds: request.max_duration_seconds } : {}),
  };
  return Object.keys(budgets).length > 0 ? { budgets } : {};
}

function parseRequest(body: unknown): AgentRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('the request body must be a JSON object');
  }
  const parsed = agentRequestSchema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw invalidRequest(parsed.error.issues[0] ? describeIssue(parsed.error.issues[0]) : 'the request body is invalid');
  return parsed.data;
}

/** The allow-list (ALLOWED_MODELS) refuses a model with 403, unless INFERENCE_MODEL_ID is there to stand in. */
function chooseModel(config: ApiConfig, model: string): string {
  if (config.allowedModels.length === 0 || config.allowedModels.includes(model)) return model;
  if (config.defaultModel) return config.defaultModel;
  throw new ApiError(403, 'authorization_error', `model '${model}' is not allowed on this server`);
}

/** What an operator sees for the run in the Temporal UI: the model and the first words of the prompt. */
function summaryOf(input: Omit<AgentRunInput, 'runId'>): string {
  const lastUser = [...input.messages].reverse().find((m) => m.role === 'user');
  const prompt = (lastUser?.content ?? '').replace(/\s+/g, ' ').trim();
  return `${input.model}: ${prompt.length > 80 ? `${prompt.slice(0, 77)}...` : prompt}`;
}

function cannotStart(err: unknown): ApiError {
  return new ApiError(503, 'server_error', `cannot start the run: Temporal is unavailable (${(err as Error).message})`, { cause: err });
}
