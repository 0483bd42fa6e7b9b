/**
 * The OpenAPI 3.1 document of the API (GET /openapi.json, checked in as
 * docs/openapi.json), generated from the zod schemas that validate requests
 * (contract/request-schema.ts, the run list's query in ./runs.ts) and those
 * of the answers (./response-schemas.ts). docs/api.md says the same in words.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { agentRequestSchema } from '../contract/request-schema';
import {
  approvalRequestEvent,
  backgroundAnswer,
  cancelAnswer,
  decidedApproval,
  chatCompletionEvent,
  errorBody,
  health,
  mcpServer,
  publicHealth,
  runList,
  runView,
  toolCompletionEvent,
  usageAnswer,
} from './response-schemas';
import { listRunsQuerySchema } from './runs';
import { decisionSchema } from './approvals';
import { usageQuerySchema } from './usage';
import { version } from '../package.json';

/** The body as documented: the very schema that validates it, under its component name. */
const agentRequest = agentRequestSchema.meta({
  id: 'AgentRequest',
  description: 'The body of POST /v1/agents/heroku; fields it does not name are ignored (docs/api.md#a1-request, A3 for the tools)',
});

const json = (schema: z.ZodType, description: string): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(errorBody, description);

const eventStream: ResponseConfig = {
  description:
    'The run as a server-sent event stream, framed as Heroku frames it (no space after the colon): ' +
    '`id:<offset>` / `event:message` / `data:<ChatCompletionEvent, ToolCompletionEvent or ApprovalRequestEvent>` per event, ' +
    'then, if the run failed or was cancelled, `event:error` / `data:<Error>`, then `event:done` / `data:[DONE]`. ' +
    'A `:keep-alive` comment goes out every SSE_KEEPALIVE_MS while a step runs.',
  headers: z.object({ 'Agent-Run-Id': z.string().meta({ description: 'the run id (also the `id` of every event)' }) }),
  content: {
    'text/event-stream': {
      schema: {
        type: 'string',
        description:
          'event:message data are #/components/schemas/ChatCompletionEvent, ToolCompletionEvent or ApprovalRequestEvent; event:error data is #/components/schemas/Error',
      },
    },
  },
};

const runId = z.object({
  id: z
    .string()
    .regex(/^chatcmpl-[0-9a-f]{24}$/)
    .meta({ description: 'the run id' }),
});
const unauthorized = error('no bearer key, or a wrong one (authentication_error)');
const noSuchRun = error('no run with this id (not_found_error)');
const invalid = error('a parameter is invalid (invalid_request_error); the message names it');
const unavailable = error('Temporal cannot be reached (server_error)');
const tooMany = error('more requests this minute than KEY_REQUESTS_PER_MINUTE allows the key (rate_limit_error); Retry-After says when to try again');

const routes: RouteConfig[] = [
  {
    method: 'post',
    path: '/v1/agents/heroku',
    summary: "Run an agent: Heroku's endpoint, as a durable run",
    description:
      'Validates the request, starts its run and streams it (or, in the background, answers 202 at once). A client that disconnects does not stop the run; it resumes with GET /v1/agents/runs/{id}/stream.',
    request: {
      headers: z.object({
        Prefer: z.string().optional().meta({ description: '`respond-async`: start the run in the background and answer 202' }),
        'Idempotency-Key': z
          .string()
          .optional()
          .meta({ description: 'the same key and body attach to the run they started (its stream from offset 0); another body is a 409' }),
      }),
      body: { required: true, content: { 'application/json': { schema: agentRequest } } },
    },
    responses: {
      200: eventStream,
      202: {
        ...json(backgroundAnswer, 'a background run was started (Prefer: respond-async or "background": true)'),
        headers: z.object({
          Location: z.string().meta({ description: "the run's status path" }),
          'Agent-Run-Id': z.string(),
          'Preference-Applied': z.string(),
        }),
      },
      400: error('the body is malformed or a field is invalid (invalid_request_error); the message names the field'),
      401: unauthorized,
      403: error("the model is not on ALLOWED_MODELS, or a tool's app or dyno size is not on HEROKU_APPS / DYNO_SIZES (authorization_error)"),
      409: error('the Idempotency-Key was used with another body (idempotency_error)'),
      429: error(
        'the key already has KEY_MAX_CONCURRENT_RUNS runs running, made KEY_REQUESTS_PER_MINUTE requests this minute, or used up its KEY_DAILY_TOKEN_BUDGET today (rate_limit_error); Retry-After says when to try again',
      ),
      413: error('the body is larger than MAX_REQUEST_BYTES (invalid_request_error)'),
      503: unavailable,
    },
  },
  {
    method: 'get',
    path: '/v1/agents/runs',
    summary: 'Recent runs, newest first',
    request: { query: listRunsQuerySchema },
    responses: { 200: json(runList, 'the runs'), 400: invalid, 401: unauthorized, 429: tooMany, 503: unavailable },
  },
  {
    method: 'get',
    path: '/v1/agents/runs/{id}',
    summary: "A run's status and totals",
    request: { params: runId },
    responses: { 200: json(runView, 'the run'), 401: unauthorized, 404: noSuchRun, 429: tooMany, 503: unavailable },
  },
  {
    method: 'get',
    path: '/v1/agents/runs/{id}/stream',
    summary: "A run's events after an offset, then the run live until it ends",
    description: 'Resume: every event after the offset exactly once, then the live run; a finished run is replayed and ends with done.',
    request: {
      params: runId,
      query: z.object({
        after: z.string().optional().meta({ description: 'the last offset the client has (an integer >= -1); Last-Event-ID wins' }),
      }),
      headers: z.object({
        'Last-Event-ID': z
          .string()
          .optional()
          .meta({ description: 'the `id:` of the last event the client has, as EventSource sends it on reconnect' }),
      }),
    },
    responses: { 200: eventStream, 400: invalid, 401: unauthorized, 404: noSuchRun, 429: tooMany, 503: unavailable },
  },
  {
    method: 'post',
    path: '/v1/agents/runs/{id}/cancel',
    summary: 'Cancel a run',
    description:
      'Stops the run and any model call or tool in flight; its stream ends with event:error of type cancelled, then done. Cancelling again does no harm.',
    request: { params: runId },
    responses: {
      202: json(cancelAnswer, 'the cancel was requested, or the run had already ended'),
      401: unauthorized,
      404: noSuchRun,
      429: tooMany,
      503: unavailable,
    },
  },
  {
    method: 'post',
    path: '/v1/agents/runs/{id}/approvals/{tool_call_id}',
    summary: 'Decide a tool call that waits for a reviewer',
    description:
      'Approved, the call runs; denied, the model reads the denial (with the reason) as its result. Delivered as a validated Temporal Update.',
    request: {
      params: runId.extend({ tool_call_id: z.string().meta({ description: 'the tool_call_id of the approval.request event' }) }),
      body: { required: true, content: { 'application/json': { schema: decisionSchema } } },
    },
    responses: {
      200: json(decidedApproval, 'the decision'),
      400: error('the body is invalid (invalid_request_error); the message names the field'),
      401: unauthorized,
      404: error('no such run, or no such call waiting for approval (not_found_error)'),
      409: error('the call was already decided (conflict_error)'),
      429: tooMany,
      503: error('no worker took the decision within 30 s, or Temporal cannot be reached (server_error); try again'),
    },
  },
  {
    method: 'get',
    path: '/v1/agents/usage',
    summary: "Tokens per UTC day of the caller's key (every key for an admin)",
    description: "Counted from the runs' durable totals in Temporal visibility.",
    request: { query: usageQuerySchema },
    responses: { 200: json(usageAnswer, 'the usage'), 400: invalid, 401: unauthorized, 429: tooMany, 503: unavailable },
  },
  {
    method: 'get',
    path: '/v1/mcp/servers',
    summary: "The MCP servers of MCP_SERVERS and their tools, in Heroku's shape",
    responses: { 200: json(z.array(mcpServer), 'the servers'), 401: unauthorized, 429: tooMany },
  },
  {
    method: 'post',
    path: '/v1/mcp/servers/sync',
    summary: "List every MCP server's tools again now",
    responses: { 200: json(z.array(mcpServer), 'the servers, after the new listing'), 401: unauthorized, 429: tooMany },
  },
  {
    method: 'get',
    path: '/healthz',
    summary: 'Whether the API reaches Temporal and a worker polls the task queue',
    security: [],
    description: 'Without a key only `ok` (PublicHealth); with one, the details (Health).',
    responses: {
      200: json(z.union([health, publicHealth]), 'ready'),
      503: json(z.union([health, publicHealth]), 'not ready; with a key, `reason` says why'),
    },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: "The process's Prometheus metrics",
    description: 'Open unless METRICS_TOKEN is set; then it wants `Authorization: Bearer <METRICS_TOKEN>`.',
    security: [{}, { metricsToken: [] }],
    responses: {
      200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
      401: error('METRICS_TOKEN is set and the request does not carry it'),
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    security: [],
    responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
  },
];

/** The document, built once per call (the API builds it once at start). */
export function openApiDocument() {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of AGENTS_API_KEYS',
  });
  registry.registerComponent('securitySchemes', 'metricsToken', { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' });
  for (const route of routes) registry.registerPath(route);
  // The events travel inside the stream's text, so no path names them: list them among the components.
  const definitions = [
    ...registry.definitions,
    ...[chatCompletionEvent, toolCompletionEvent, approvalRequestEvent].map((schema) => ({ type: 'schema' as const, schema })),
  ];
  return new OpenApiGeneratorV31(definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'durable-agents',
      version,
      description:
        "Heroku's agents endpoint, POST /v1/agents/heroku, with every request run as a durable Temporal workflow, " +
        'plus resume, status, list and cancel of runs. docs/api.md is the reference in words.',
    },
    security: [{ apiKey: [] }],
  });
}

/** The document as docs/openapi.json holds it (`npm run openapi` writes it). */
export const openApiText = () => `${JSON.stringify(openApiDocument(), null, 2)}\n`;
