/**
 * What the API, the workflow and the activities agree on: the workflow's name
 * and input, its event-log messages (update + queries), the activities and
 * their payloads. Nothing in here may hold a secret: it all lands in workflow
 * history.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { AssistantMessage, ChatMessage, CompletionEvent, ErrorBody, Usage } from './wire';

export const TASK_QUEUE = 'durable-agents';
/**
 * Tool calls of runs started by this version go to their own task queue, so
 * a worker sizes them apart from model calls (which wait on the network and
 * stay on TASK_QUEUE, where the server can hand them out eagerly).
 */
export const TOOL_TASK_QUEUE = 'durable-agents-tools';

/** The workflow type of a run (workflows/agent-run.ts). */
export const AGENT_RUN_WORKFLOW = 'agentRun';
export type AgentRunWorkflow = (input: AgentRunInput) => Promise<RunTerminal>;

/**
 * Failure type of a model call the upstream answered with an error; its
 * details carry `{ status }`. The workflow turns it into an `upstream_error`
 * event, any other failure into a `server_error`.
 */
export const UPSTREAM_ERROR = 'UpstreamError';

export type SideEffectClass = 'read-only' | 'idempotent' | 'side-effecting';

export interface FunctionDefinition {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

export interface RuntimeParams {
  target_app_name?: string;
  dyno_size: string;
  ttl_seconds: number;
  max_calls: number;
  tool_params: Record<string, unknown>;
  /** Set only on tools whose calls wait for a reviewer's decision (docs/api.md#b5-approvals). */
  approval?: { timeout_seconds: number };
}

/** A request's tool after validation: what the model sees and how to run it. */
export interface ResolvedTool {
  name: string;
  type: 'heroku_tool' | 'mcp';
  sideEffect: SideEffectClass;
  function: FunctionDefinition;
  runtime: RuntimeParams;
}

export interface InferenceParams {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
}

export interface AgentRunInput {
  runId: string;
  model: string;
  messages: ChatMessage[];
  tools: ResolvedTool[];
  inference: InferenceParams;
  maxModelCalls: number;
  /** How many tool calls of one model reply run at once (MAX_PARALLEL_TOOL_CALLS); runs started before it run them one by one. */
  parallelToolCalls?: number;
  /** Where the run's outcome is POSTed when it ends (docs/api.md#b4-background-runs-and-webhooks); absent on runs without one. */
  webhook?: { url: string; maxAttempts: number };
  /** The request's max_total_tokens and max_duration_seconds (docs/api.md#b6-budgets); absent on runs without them. */
  budgets?: RunBudgets;
  /** KEY_DAILY_TOKEN_BUDGET of the key that started the run (docs/api.md#b6-budgets), checked between steps; absent without one. */
  keyBudget?: KeyBudget;
  /** Whether the custom search attributes are registered, so the run may update them. */
  searchAttributes: boolean;
  /** State handed over by continue-as-new. */
  carried?: CarriedState;
}

export interface KeyBudget {
  apiKeyId: string;
  dailyTokens: number;
  /** The UTC day (`YYYY-MM-DD`) whose usage the run counts against: the day it started. */
  day: string;
}

export interface KeyTokensInput {
  apiKeyId: string;
  day: string;
  /** The asking run, whose own total the workflow knows better than visibility. */
  exceptWorkflowId: string;
}

export interface RunBudgets {
  maxTotalTokens?: number;
  maxDurationSeconds?: number;
}

/** What a run carries into its next execution when its history grows long. */
export interface CarriedState {
  /** Offset of the new execution's first event. */
  baseOffset: number;
  conversation: ChatMessage[];
  toolCalls: Record<string, number>;
  modelCalls: number;
  toolCallPosition: number;
  usage: Usage;
  created: number;
  /** How many messages of the conversation earlier model calls were given (with conversation-by-reference). */
  knownToModel?: number;
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** How a run ended; the `error` becomes the stream's `event:error`. */
export interface RunTerminal {
  status: Exclude<RunStatus, 'running'>;
  error?: ErrorBody['error'];
}

export interface EventBatch {
  /** Events with offsets `from`, `from + 1`, ... */
  from: number;
  events: CompletionEvent[];
  /** Set once the run has ended and every event is in the log. */
  terminal?: RunTerminal;
  /**
   * Set when the events asked for were logged by an earlier execution of the
   * run (before a continue-as-new): its Temporal run id, to query instead.
   */
  earlier?: string;
  /** Set when this execution is handing over to a new one: poll again. */
  continuing?: boolean;
  /** Set when a newer poll of the same feed, or too many waiting polls, released this one before it had events. */
  superseded?: boolean;
}

/**
 * The stream polls one execution keeps waiting at most: a newer poll releases
 * the oldest beyond this, so a run never reaches Temporal's limit of 10
 * Updates in flight (one slot is left for a poll on its way in).
 */
export const MAX_WAITING_POLLS = 8;

export interface WaitForEventsArgs {
  /** The last offset the caller has; -1 for none. */
  after: number;
  /** How long a run started before timer-less polls waits before answering with no events. */
  timeoutMs: number;
  /** The caller's feed (one per API process): its newer poll releases its older one still waiting. */
  feed?: string;
}

/** A tool call waiting for a reviewer (docs/api.md#b5-approvals). */
export interface PendingApproval {
  tool_call_id: string;
  name: string;
  arguments: string;
  /** Unix seconds. */
  requested_at: number;
  /** Unix seconds when the call is denied by itself. */
  expires_at: number;
}

export type ApprovalDecision = 'approve' | 'deny';

export interface DecidedApproval {
  tool_call_id: string;
  name: string;
  decision: ApprovalDecision;
  reason: string | null;
  /** `reviewer` (the approvals endpoint), `timeout` (approval_timeout_seconds) or `budget` (max_duration_seconds). */
  decided_by: 'reviewer' | 'timeout' | 'budget';
}

export interface DecideApprovalArgs {
  toolCallId: string;
  decision: ApprovalDecision;
  reason?: string;
}

/** Failure type of a webhook that can never be delivered (no WEBHOOK_SECRET, a refused target): not retried. */
export const WEBHOOK_UNDELIVERABLE = 'WebhookUndeliverable';

/** Failure types the approval update's validator rejects with: the API answers 404 and 409. */
export const APPROVAL_NOT_FOUND = 'ApprovalNotFound';
export const APPROVAL_ALREADY_DECIDED = 'ApprovalAlreadyDecided';

export interface RunSummary {
  runId: string;
  status: RunStatus;
  model: string;
  created: number;
  usage: Usage;
  model_calls: number;
  tool_calls: Record<string, number>;
  events: number;
  error: ErrorBody['error'] | null;
  /** The last assistant message of the run (its answer, once it completed); null before the first model call. */
  message: AssistantMessage | null;
  /** Tool calls waiting for a reviewer now. */
  pending_approvals: PendingApproval[];
  /** Approvals of this execution that were decided (by a reviewer, the timeout or the duration budget). */
  decided_approvals: DecidedApproval[];
}

/** Long-poll: resolves as soon as there are events after `after` or the run ended (or, for older runs, after `timeoutMs`). */
export const waitForEventsUpdate = defineUpdate<EventBatch, [WaitForEventsArgs]>('waitForEvents');
/** A reviewer's decision on a pending approval; the validator refuses unknown (APPROVAL_NOT_FOUND) and decided (APPROVAL_ALREADY_DECIDED) calls. */
export const decideApprovalUpdate = defineUpdate<DecidedApproval, [DecideApprovalArgs]>('decideApproval');
/** Snapshot of the log after an offset (no history cost; used for finished runs). */
export const eventsQuery = defineQuery<EventBatch, [{ after: number; limit?: number }]>('events');
export const summaryQuery = defineQuery<RunSummary>('summary');
/** The first `upTo` messages of the conversation: what a model call given only new messages reads on a cache miss. */
export const conversationQuery = defineQuery<ChatMessage[], [{ upTo: number }]>('conversation');

// ---------------------------------------------------------------- activities

export interface ModelCallInput {
  model: string;
  /** The conversation; with `known`, only the messages after its first `known`. */
  messages: ChatMessage[];
  /**
   * Set by runs that pass the conversation by reference: the first `known`
   * messages are durable in the run already, and the activity takes them from
   * its worker's cache or asks the workflow (conversationQuery).
   */
  known?: number;
  tools: FunctionDefinition[];
  params: InferenceParams;
}

export interface ModelCallResult {
  message: AssistantMessage;
  finish_reason: 'stop' | 'length' | 'tool_calls';
  usage: Usage;
  system_fingerprint?: string;
}

export interface ToolCallInput {
  runId: string;
  /** Stable across retries: run id + the call's position in the run (TOOL_CALL_ID). */
  callKey: string;
  tool: ResolvedTool;
  /** The model's JSON arguments string, unparsed. */
  arguments: string;
}

export interface ToolCallResult {
  /** Goes after "Tool '<name>' returned result: ". */
  payload: string;
}

/** The JSON a webhook receives when its run ends (Standard Webhooks' `{type, timestamp, data}`). */
export interface WebhookPayload {
  type: `run.${Exclude<RunStatus, 'running'>}`;
  /** ISO 8601: when the run ended. */
  timestamp: string;
  data: Omit<RunSummary, 'runId' | 'pending_approvals' | 'decided_approvals'> & { id: string };
}

export interface WebhookDelivery {
  url: string;
  /** `webhook-id`: the same on every attempt, so a receiver can drop repeats. */
  webhookId: string;
  payload: WebhookPayload;
}

/** The activities the workflow proxies (types only: no implementation is bundled into workflows). */
export interface AgentActivities {
  callModel(input: ModelCallInput): Promise<ModelCallResult>;
  runTool(input: ToolCallInput): Promise<ToolCallResult>;
  deliverWebhook(input: WebhookDelivery): Promise<void>;
  /** The tokens of the key's other runs of the day, from visibility (common/token-usage.ts). */
  keyTokensUsed(input: KeyTokensInput): Promise<number>;
}
