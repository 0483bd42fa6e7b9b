// An OpenAI-compatible chat completions server for tests: the real `openai`
// package talks to it over HTTP on 127.0.0.1. Replies come from a handler
// (default: the stateless `scriptedAgent`) built with the `reply` helpers.
// As strict as OpenAI's API: a wrong key is a 401, and a conversation the API
// would refuse (see conversationProblem) is a 400 in OpenAI's words before any
// handler runs, so a product bug in what reaches the model fails the run.
//
// CLI: tsx test/doubles/model-server.ts --key K [--port P]
//   prints {"url":...,"key":...} on stdout, serves scriptedAgent until SIGTERM.

import express, { type Request, type Response, type NextFunction } from 'express';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export interface ReplyOpts {
  /** Wait this long before answering; ends early if the client disconnects. */
  delayMs?: number;
}

export interface ToolCallSpec {
  name: string;
  arguments: object | string;
  id?: string;
}

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** Replies are plain objects, so `{ ...reply.error(500), delayMs: 100 }` also works. */
export type ModelReply =
  | (ReplyOpts & {
      kind: 'completion';
      content: string | null;
      toolCalls?: ToolCall[];
      finishReason: 'stop' | 'tool_calls' | 'length';
    })
  | (ReplyOpts & { kind: 'error'; status: number; body: unknown; headers: Record<string, string> })
  | (ReplyOpts & { kind: 'raw'; status: number; text: string; headers: Record<string, string> })
  | { kind: 'hang' }
  | { kind: 'drop' };

export interface ModelRequest {
  /** The chat.completions request body. */
  body: any;
  headers: IncomingHttpHeaders;
  /** How many times an identical body has been seen (1-based): retries of the same call. */
  attempt: number;
}

export type ModelHandler = (req: ModelRequest) => ModelReply | Promise<ModelReply>;

export interface RecordedRequest extends ModelRequest {
  /** Arrival time, ms since the epoch. */
  time: number;
  /** When the client closed the connection before the answer was sent (it gave up, e.g. on cancel). */
  abandonedAt?: number;
}

/** A request refused with a 400 before the handler saw it, and why. */
export interface RefusedRequest {
  body: any;
  refusal: Refusal;
}

export interface ModelServer {
  /** Base URL; requests go to url + '/v1/chat/completions'. */
  url: string;
  /** The bearer key it requires; empty when it takes requests without one (`open`). */
  key: string;
  /** Authenticated requests the handler answered, in arrival order. */
  requests: RecordedRequest[];
  /** Authenticated requests refused as a real upstream would (see conversationProblem). */
  refused: RefusedRequest[];
  /** The headers of each authenticated `GET /v1/models`, in arrival order. */
  modelListRequests: IncomingHttpHeaders[];
  setHandler(h: ModelHandler): void;
  close(): Promise<void>;
}

function openAIError(status: number, message: string, code: string | null = null, param: string | null = null) {
  const type = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param, code } };
}

/** Function names OpenAI's API accepts, in tools and in tool calls. */
export const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

interface Refusal {
  message: string;
  param: string;
  code: string | null;
}

function functionNameProblem(name: unknown, param: string): Refusal | undefined {
  if (typeof name !== 'string' || FUNCTION_NAME.test(name)) return undefined;
  if (name.length > 64) {
    return {
      message: `Invalid '${param}': string too long. Expected a string with maximum length 64, but got a string with length ${name.length} instead.`,
      param,
      code: 'string_above_max_length',
    };
  }
  return {
    message: `Invalid '${param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
    param,
    code: 'invalid_value',
  };
}

/**
 * What an OpenAI-compatible API refuses with a 400 before any model runs, in
 * its own words: function names outside ^[a-zA-Z0-9_-]{1,64}$, a tool message
 * that answers no call of the assistant message before it, and an assistant
 * message whose tool calls are not all answered before the next message.
 */
export function conversationProblem(body: any): Refusal | undefined {
  const tools: any[] = Array.isArray(body.tools) ? body.tools : [];
  for (const [i, t] of tools.entries()) {
    const problem = functionNameProblem(t?.function?.name, `tools[${i}].function.name`);
    if (problem) return problem;
  }
  const messages: any[] = body.messages;
  /** The calls of the last assistant message not answered yet, while its tool messages follow. */
  let open: { at: number; ids: string[] } | undefined;
  for (const [i, m] of messages.entries()) {
    if (m?.role === 'tool') {
      if (!open) {
        return {
          message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          param: `messages.[${i}].role`,
          code: null,
        };
      }
      if (!open.ids.includes(m.tool_call_id)) {
        return {
          message: `Invalid parameter: 'tool_call_id' of '${String(m.tool_call_id)}' not found in 'tool_calls' of previous message.`,
          param: `messages.[${i}].tool_call_id`,
          code: null,
        };
      }
      open.ids = open.ids.filter((id) => id !== m.tool_call_id);
      continue;
    }
    if (open?.ids.length) return unanswered(open);
    open = undefined;
    if (m?.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length) {
      for (const [j, c] of m.tool_calls.entries()) {
        const problem = functionNameProblem(c?.function?.name, `messages[${i}].tool_calls[${j}].function.name`);
        if (problem) return problem;
      }
      open = { at: i, ids: m.tool_calls.map((c: any) => c?.id) };
    }
  }
  return open?.ids.length ? unanswered(open) : undefined;
}

function unanswered(open: { at: number; ids: string[] }): Refusal {
  return {
    message:
      "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
      `The following tool_call_ids did not have response messages: ${open.ids.join(', ')}`,
    param: `messages.[${open.at}].role`,
    code: null,
  };
}

export const reply = {
  text: (content: string, opts: ReplyOpts = {}): ModelReply => ({ kind: 'completion', content, finishReason: 'stop', ...opts }),

  toolCalls: (calls: ToolCallSpec[], content: string | null = null, opts: ReplyOpts = {}): ModelReply => ({
    kind: 'completion',
    content,
    finishReason: 'tool_calls',
    toolCalls: calls.map((c) => ({
      id: c.id ?? `tooluse_${randomBytes(16).toString('base64url').slice(0, 22)}`,
      type: 'function',
      function: {
        name: c.name,
        arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
      },
    })),
    ...opts,
  }),

  length: (content: string, opts: ReplyOpts = {}): ModelReply => ({ kind: 'completion', content, finishReason: 'length', ...opts }),

  /** An HTTP error; `body` defaults to OpenAI's error shape. E.g. error(429, undefined, { 'retry-after': '1' }). */
  error: (status: number, body?: unknown, headers: Record<string, string> = {}, opts: ReplyOpts = {}): ModelReply => ({
    kind: 'error',
    status,
    body: body ?? openAIError(status, `Simulated error ${status}`),
    headers,
    ...opts,
  }),

  /** Any status and body text verbatim, e.g. invalid JSON or a 200 without choices. */
  raw: (status: number, text: string, headers: Record<string, string> = {}, opts: ReplyOpts = {}): ModelReply => ({
    kind: 'raw',
    status,
    text,
    headers,
    ...opts,
  }),

  /** Never answers; the request ends only when the client gives up. */
  hang: (): ModelReply => ({ kind: 'hang' }),

  /** Closes the connection without an answer: a network error for the client. */
  drop: (): ModelReply => ({ kind: 'drop' }),
};

/** Text of a message's content, whether a string or an array of content parts. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
  return '';
}

/** The tool calls asked for by the `<verb> <tool> <args>` lines of `text`. */
function directives(verb: 'CALL' | 'LOOP', text: string): ToolCallSpec[] {
  const calls: ToolCallSpec[] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^\\s*${verb}\\s+(\\S+)\\s*(.*)$`).exec(line);
    const [, name, args = ''] = m ?? [];
    if (name) calls.push({ name, arguments: args.trim() || '{}' });
  }
  return calls;
}

/**
 * The default handler: a STATELESS scripted model, so any number of concurrent
 * runs can share it. It decides only from the conversation in the request.
 *
 * Directives are lines in the latest `user` message:
 *   CALL <tool> <args>  Answer with a call to <tool>. <args> is the rest of the
 *                       line, passed verbatim as the arguments string (so
 *                       malformed JSON can be tested); `{}` if empty. Several
 *                       CALL lines give several tool calls in one message.
 *                       Acted on only while that user message is the last
 *                       message, so once the tool results are in, the model
 *                       finishes.
 *   LOOP <tool> <args>  Like CALL, but acted on at every turn: the model calls
 *                       the tool again and again (for max_calls / run caps).
 * Directives are ignored when the request offers no tools. Otherwise:
 *   last message is `tool`  ->  "Done: " + the content of the trailing tool
 *                               messages (joined with "\n")
 *   anything else           ->  "Echo: " + the latest user message's content
 *
 * Example user message:
 *   CALL dyno_run_command {"command":"echo hi"}
 */
export const scriptedAgent = ({ body }: ModelRequest): ModelReply => {
  const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  const last = messages.at(-1);
  const userText = textOf(messages.filter((m) => m?.role === 'user').at(-1)?.content);

  const loops = hasTools ? directives('LOOP', userText) : [];
  if (loops.length) return reply.toolCalls(loops);

  if (last?.role === 'tool') {
    const results: string[] = [];
    for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--) {
      results.unshift(textOf(messages[i].content));
    }
    return reply.text(`Done: ${results.join('\n')}`);
  }

  const calls = hasTools && last?.role === 'user' ? directives('CALL', userText) : [];
  if (calls.length) return reply.toolCalls(calls);
  return reply.text(`Echo: ${userText}`);
};

/**
 * Resolves after `ms` (never, if undefined), or as soon as the client
 * disconnects; then resolves to true. A request's own 'close' event fires once
 * its body has been read, so the response's 'close' is the one to watch.
 */
function wait(res: Response, ms?: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer =
      ms === undefined
        ? undefined
        : setTimeout(() => {
            res.off('close', onClose);
            resolve(false);
          }, ms);
    res.once('close', onClose);
  });
}

/** Deterministic token counts: about four characters a token. */
const tokens = (text: string) => Math.ceil(text.length / 4);

function sendCompletion(req: Request, res: Response, r: Extract<ModelReply, { kind: 'completion' }>) {
  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const head = {
    id,
    created: Math.floor(Date.now() / 1000),
    model: req.body.model,
    system_fingerprint: 'fp_durable_double',
  };
  const completionTokens = tokens((r.content ?? '') + (r.toolCalls ? JSON.stringify(r.toolCalls) : ''));
  const promptTokens = tokens(JSON.stringify(req.body.messages));
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };

  if (req.body.stream !== true) {
    res.json({
      ...head,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: r.content,
            refusal: null,
            ...(r.toolCalls ? { tool_calls: r.toolCalls } : {}),
          },
          logprobs: null,
          finish_reason: r.finishReason,
        },
      ],
      usage,
    });
    return;
  }

  // Server-sent events, chunked as OpenAI does: role, content, one delta per
  // tool call, the finish reason, then usage if asked for, then [DONE].
  const withUsage = req.body.stream_options?.include_usage === true;
  const chunk = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...(withUsage ? { usage: null } : {}), ...extra })}\n\n`;
  const delta = (d: object, finish: string | null = null) => chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(delta({ role: 'assistant', content: '', refusal: null }));
  if (r.content) res.write(delta({ content: r.content }));
  r.toolCalls?.forEach((tc, index) => res.write(delta({ tool_calls: [{ index, ...tc }] })));
  res.write(delta({}, r.finishReason));
  if (withUsage) res.write(chunk([], { usage }));
  res.end('data: [DONE]\n\n');
}

export interface ModelServerOptions {
  key?: string;
  /** Take requests without any key (as a local Ollama does); `key` is then ignored. */
  open?: boolean;
  handler?: ModelHandler;
  port?: number;
}

export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServer> {
  const key = opts.open ? '' : (opts.key ?? `sk-test-${randomBytes(12).toString('hex')}`);
  let handler = opts.handler ?? scriptedAgent;
  const requests: RecordedRequest[] = [];
  const refused: RefusedRequest[] = [];
  const modelListRequests: IncomingHttpHeaders[] = [];
  const seen = new Map<string, number>();

  const app = express();

  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    if (key === '' || req.headers.authorization === `Bearer ${key}`) return next();
    res.status(401).json(openAIError(401, 'Incorrect API key provided.', 'invalid_api_key'));
  };

  app.get('/v1/models', authenticate, (req, res) => {
    modelListRequests.push(req.headers);
    res.json({ object: 'list', data: [{ id: 'double-model', object: 'model', created: 0, owned_by: 'durable-agents-tests' }] });
  });

  app.post('/v1/chat/completions', authenticate, express.json({ limit: '50mb' }), async (req, res) => {
    const body = req.body;
    if (typeof body?.model !== 'string' || !Array.isArray(body.messages)) {
      res.status(400).json(openAIError(400, "'model' and 'messages' are required."));
      return;
    }
    const refusal = conversationProblem(body);
    if (refusal) {
      refused.push({ body, refusal });
      res.status(400).json(openAIError(400, refusal.message, refusal.code, refusal.param));
      return;
    }
    const bodyKey = JSON.stringify(body);
    const attempt = (seen.get(bodyKey) ?? 0) + 1;
    seen.set(bodyKey, attempt);
    const request: ModelRequest = { body, headers: req.headers, attempt };
    const recorded: RecordedRequest = { ...request, time: Date.now() };
    requests.push(recorded);
    let dropped = false;
    res.once('close', () => {
      if (!res.writableFinished && !dropped) recorded.abandonedAt = Date.now();
    });

    const r = await handler(request);
    if (r.kind === 'drop') {
      dropped = true;
      req.socket.destroy();
      return;
    }
    if (r.kind === 'hang') {
      await wait(res);
      return;
    }
    if (r.delayMs && (await wait(res, r.delayMs))) return; // the client went away

    if (r.kind === 'completion') sendCompletion(req, res, r);
    else if (r.kind === 'error') res.status(r.status).set(r.headers).json(r.body);
    else res.status(r.status).set(r.headers).send(r.text);
  });

  // For tests that run this server as a child process.
  app.get('/_double/requests', (_req, res) => {
    res.json(requests);
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json(openAIError(404, 'Unknown endpoint.'));
  });
  // Invalid JSON bodies, and handlers that throw.
  app.use((err: any, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? err.statusCode ?? 500;
    res.status(status).json(openAIError(status, String(err.message ?? err)));
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    key,
    requests,
    refused,
    modelListRequests,
    setHandler: (h) => {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // including hanging requests
      }),
  };
}

if (require.main === module) {
  const { values } = parseArgs({ options: { key: { type: 'string' }, port: { type: 'string' } } });
  void startModelServer({ key: values.key, port: values.port ? Number(values.port) : undefined }).then((s) => {
    console.log(JSON.stringify({ url: s.url, key: s.key }));
    const stop = () => void s.close().then(() => process.exit(0));
    process.on('SIGTERM', stop).on('SIGINT', stop);
  });
}
