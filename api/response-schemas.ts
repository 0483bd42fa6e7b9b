/**
 * The shapes of what the API answers, in zod, for the OpenAPI document
 * (./openapi.ts): the stream's events, error bodies, run views, health and
 * the MCP registry. Each must be exactly the TypeScript type the code
 * produces: the checks at the end fail the type check when one drifts, and
 * test/e2e/openapi.test.ts parses real answers with them.
 */
import { z } from 'zod';
import type { DecidedApproval, RunStatus } from '../contract/run-contract';
import type { ApprovalRequestEvent, ChatCompletionEvent, ErrorBody, ToolCompletionEvent, Usage } from '../contract/wire';
import type { BackgroundAnswer } from './background';
import type { UsageAnswer } from './usage';
import type { Health } from './health';
import type { McpServerObject } from './mcp-servers';
import type { RunListItem, RunView } from './runs';

export const errorBody = z
  .object({
    error: z
      .object({
        code: z.number().int().meta({ description: 'the HTTP status, or for stream errors the status the failure stands for (499: cancelled)' }),
        message: z.string().meta({ description: 'what went wrong, naming the field or limit at fault' }),
        type: z.string().meta({
          description:
            'invalid_request_error, authentication_error, authorization_error, not_found_error, idempotency_error, conflict_error, rate_limit_error or server_error before a stream; upstream_error, run_limit_exceeded, budget_exceeded, cancelled or server_error in one',
        }),
      })
      .strict(),
  })
  .strict()
  .meta({ id: 'Error', description: "Heroku's error body: the answer to a refused request, and the data of a stream's event:error" });

const usage = z
  .object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() })
  .strict()
  .meta({ id: 'Usage' });

const toolCall = z
  .object({
    id: z.string(),
    type: z.literal('function'),
    function: z.object({ name: z.string(), arguments: z.string().meta({ description: 'JSON, as the model wrote it' }) }).strict(),
  })
  .strict();

const assistantMessage = z
  .object({
    role: z.literal('assistant'),
    content: z.string().nullable(),
    refusal: z.string().nullable(),
    tool_calls: z.array(toolCall).optional().meta({ description: 'present only when the model asked for tools' }),
  })
  .strict();

/** The fields every event of a run starts with; `object` says which event it is. */
const eventHead = <Kind extends string>(object: Kind) => ({
  id: z.string().meta({ description: 'the run id, the same on every event of a run' }),
  object: z.literal(object),
  created: z.number().int().meta({ description: 'Unix time, seconds' }),
  system_fingerprint: z.string(),
});

export const chatCompletionEvent = z
  .object({
    ...eventHead('chat.completion'),
    model: z.string(),
    choices: z.tuple([
      z.object({ index: z.literal(0), message: assistantMessage, finish_reason: z.enum(['stop', 'length', 'tool_calls']) }).strict(),
    ]),
    usage: usage.meta({ description: 'of this one model call' }),
  })
  .strict()
  .meta({ id: 'ChatCompletionEvent', description: 'One model reply: the data of an event:message frame' });

export const toolCompletionEvent = z
  .object({
    ...eventHead('tool.completion'),
    choices: z.tuple([
      z
        .object({
          index: z.literal(0),
          message: z
            .object({
              role: z.literal('tool'),
              content: z.string().meta({ description: "Tool '<name>' returned result: <payload>" }),
              refusal: z.null(),
              tool_call_id: z.string(),
              name: z.string(),
            })
            .strict(),
          finish_reason: z.literal(''),
        })
        .strict(),
    ]),
    usage: z.object({}).strict(),
  })
  .strict()
  .meta({ id: 'ToolCompletionEvent', description: 'One tool call and its result: the data of an event:message frame' });

export const approvalRequestEvent = z
  .object({
    ...eventHead('approval.request'),
    tool_call_id: z.string().meta({ description: 'the call to decide: POST /v1/agents/runs/{id}/approvals/{tool_call_id}' }),
    name: z.string().meta({ description: 'the tool' }),
    arguments: z.string().meta({ description: 'JSON, as the model wrote it' }),
    expires_at: z.number().int().meta({ description: 'Unix time, seconds, when the call is denied by itself (approval_timeout_seconds)' }),
  })
  .strict()
  .meta({
    id: 'ApprovalRequestEvent',
    description:
      'A tool call with requires_approval waits for a reviewer: the data of an event:message frame (our extension; Heroku clients skip it)',
  });

const pendingApproval = z
  .object({
    tool_call_id: z.string(),
    name: z.string(),
    arguments: z.string(),
    requested_at: z.number().int(),
    expires_at: z.number().int(),
  })
  .strict()
  .meta({ id: 'PendingApproval' });

export const decidedApproval = z
  .object({
    tool_call_id: z.string(),
    name: z.string(),
    decision: z.enum(['approve', 'deny']),
    reason: z.string().nullable(),
    decided_by: z.enum(['reviewer', 'timeout', 'budget']),
  })
  .strict()
  .meta({ id: 'DecidedApproval' });

const runStatus = z.enum(['running', 'completed', 'failed', 'cancelled']).meta({ id: 'RunStatus' });

export const runView = z
  .object({
    id: z.string().meta({ description: 'the run id, chatcmpl-<24 hex>' }),
    workflow_id: z.string().meta({ description: "the run's workflow in Temporal, agent-run-<24 hex>" }),
    status: runStatus,
    model: z.string(),
    created: z.number().int().meta({ description: 'Unix time, seconds' }),
    usage: usage.meta({ description: 'totals of every model call of the run' }),
    model_calls: z.number().int(),
    tool_calls: z.record(z.string(), z.number().int()).meta({ description: 'calls per tool name' }),
    events: z.number().int().meta({ description: 'message events in the stream so far' }),
    error: errorBody.shape.error.nullable().meta({ description: "how the run failed; the stream's event:error" }),
    message: assistantMessage
      .nullable()
      .meta({ description: 'the last assistant message (the answer, once completed); null before the first model call' }),
    pending_approvals: z.array(pendingApproval).meta({ description: 'tool calls waiting for a reviewer now' }),
    decided_approvals: z.array(decidedApproval),
  })
  .strict()
  .meta({ id: 'RunView' });

export const runList = z
  .object({ data: z.array(runView.pick({ id: true, workflow_id: true, status: true, model: true, created: true })) })
  .strict()
  .meta({ id: 'RunList', description: 'newest first' });

export const cancelAnswer = z
  .object({
    id: z.string(),
    status: z.union([z.literal('cancelling'), runStatus]).meta({ description: 'cancelling, or the final status of a run that had already ended' }),
  })
  .strict()
  .meta({ id: 'CancelAnswer' });

export const backgroundAnswer = z
  .object({
    id: z.string(),
    status: z.literal('running'),
    urls: z.object({ status: z.string(), stream: z.string(), cancel: z.string() }).strict(),
  })
  .strict()
  .meta({ id: 'BackgroundAnswer', description: 'A background run was started (Prefer: respond-async or "background": true)' });

export const usageAnswer = z
  .object({
    from: z.string(),
    to: z.string(),
    data: z.array(z.object({ day: z.string(), api_key_id: z.string(), runs: z.number().int(), total_tokens: z.number().int() }).strict()),
    total_tokens: z.number().int(),
    daily_token_budget: z.number().int().nullable().meta({ description: 'KEY_DAILY_TOKEN_BUDGET, or null' }),
  })
  .strict()
  .meta({ id: 'UsageAnswer', description: 'tokens and runs per UTC day and key' });

export const health = z
  .object({
    ok: z.boolean(),
    temporal: z.enum(['reachable', 'unreachable']),
    workers: z.number().int().meta({ description: 'workers that polled the task queue in the last 70 s' }),
    api_processes: z.number().int().meta({ description: 'API processes serving the namespace' }),
    streams: z
      .object({
        open: z.number().int().meta({ description: "this process's open event streams" }),
        buffered_bytes: z.number().int().meta({ description: 'bytes they hold that their clients have not read yet' }),
      })
      .strict(),
    reason: z.string().optional().meta({ description: 'why the service is not ok' }),
  })
  .strict()
  .meta({ id: 'Health', description: 'what an authenticated caller sees; without a key only `ok` (PublicHealth)' });

/** /healthz without a key: internals are for authenticated callers only. */
export const publicHealth = z.object({ ok: z.boolean() }).strict().meta({ id: 'PublicHealth' });

export const mcpServer = z
  .object({
    id: z.string().meta({ description: 'a stable UUID of the namespace' }),
    app_id: z.null(),
    process_type: z.string().nullable().meta({ description: 'a stdio server: its command' }),
    process_command: z.string().nullable().meta({ description: 'a stdio server: its command line' }),
    url: z.string().nullable().meta({ description: 'a streamable HTTP server: its URL without credentials or query' }),
    created_at: z.string(),
    updated_at: z.string(),
    namespace: z.string(),
    server_status: z.enum(['registered', 'disconnected']),
    primitives_status: z.enum(['syncing', 'synced', 'error']),
    error: z.string().nullable().meta({ description: 'why the server is disconnected' }),
    tools: z.array(
      z
        .object({
          name: z.string(),
          namespaced_name: z.string().meta({ description: '<namespace>/<tool>, as requests name it' }),
          description: z.string(),
          input_schema: z.record(z.string(), z.unknown()),
          annotations: z.record(z.string(), z.unknown()),
        })
        .strict(),
    ),
  })
  .strict()
  .meta({ id: 'McpServer' });

// Each schema is exactly the type the code answers with; a drift fails `npm run check`.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const exact: [
  Exact<z.infer<typeof errorBody>, ErrorBody>,
  Exact<z.infer<typeof usage>, Usage>,
  Exact<z.infer<typeof chatCompletionEvent>, ChatCompletionEvent>,
  Exact<z.infer<typeof toolCompletionEvent>, ToolCompletionEvent>,
  Exact<z.infer<typeof runStatus>, RunStatus>,
  Exact<z.infer<typeof runView>, RunView>,
  Exact<z.infer<typeof runList>['data'][number], RunListItem>,
  Exact<z.infer<typeof cancelAnswer>['status'], RunStatus | 'cancelling'>,
  Exact<z.infer<typeof health>, Health>,
  Exact<z.infer<typeof mcpServer>, McpServerObject>,
  Exact<z.infer<typeof approvalRequestEvent>, ApprovalRequestEvent>,
  Exact<z.infer<typeof decidedApproval>, DecidedApproval>,
  Exact<z.infer<typeof backgroundAnswer>, BackgroundAnswer>,
  Exact<z.infer<typeof usageAnswer>, UsageAnswer>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true];
void exact;
