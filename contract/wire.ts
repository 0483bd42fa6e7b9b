/**
 * The event half of the wire contract (docs/api.md#a5-the-event-stream): the
 * completion objects we stream, byte-compatible with Heroku's, and the error
 * bodies. Types and constants only: the workflow imports it.
 */
import type { ChatMessage, ToolCall } from './request-schema';

export type { ChatMessage, ToolCall };

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Adds `add` into `total`: a run's totals (the workflow) or a stream's (the CLI). */
export function addUsage(total: Usage, add: Usage): void {
  total.prompt_tokens += add.prompt_tokens;
  total.completion_tokens += add.completion_tokens;
  total.total_tokens += add.total_tokens;
}

export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  refusal: string | null;
  tool_calls?: ToolCall[];
}

export interface ChatCompletionEvent {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: [{ index: 0; message: AssistantMessage; finish_reason: 'stop' | 'length' | 'tool_calls' }];
  usage: Usage;
}

export interface ToolCompletionEvent {
  id: string;
  object: 'tool.completion';
  created: number;
  system_fingerprint: string;
  choices: [
    {
      index: 0;
      message: { role: 'tool'; content: string; refusal: null; tool_call_id: string; name: string };
      finish_reason: '';
    },
  ];
  usage: Record<string, never>;
}

/**
 * Our extension (docs/api.md#b5-approvals): a tool call waits for a reviewer.
 * Framed like the completions (`event:message`), so Heroku's clients, which
 * act on the `object`s they know, skip it.
 */
export interface ApprovalRequestEvent {
  id: string;
  object: 'approval.request';
  created: number;
  system_fingerprint: string;
  tool_call_id: string;
  name: string;
  arguments: string;
  /** Unix seconds when the call is denied by itself (approval_timeout_seconds). */
  expires_at: number;
}

/** Every event of a run's log (the name predates approval requests). */
export type CompletionEvent = ChatCompletionEvent | ToolCompletionEvent | ApprovalRequestEvent;

/** Body of an HTTP error (docs/api.md#a2-errors-before-the-stream) and of an `event:error` in the stream. */
export interface ErrorBody {
  error: { code: number; message: string; type: string };
}

/** The `event:error` of a cancelled run, whether the workflow or the API (for a run ended from outside) writes it. */
export const RUN_CANCELLED: ErrorBody['error'] = { code: 499, type: 'cancelled', message: 'the run was cancelled' };

/** HTTP-style code of a `budget_exceeded` error (docs/api.md#b6-budgets): a limit the caller set was reached. */
export const BUDGET_EXCEEDED_CODE = 429;

/** The prefix Heroku's clients parse out of every tool message. */
export function toolResultContent(toolName: string, payload: string): string {
  return `Tool '${toolName}' returned result: ${payload}`;
}

export const SYSTEM_FINGERPRINT = 'durable-agents';
