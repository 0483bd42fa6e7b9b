/**
 * Property-based fuzzing of the running service (fast-check): thousands of
 * malformed requests (methods, paths, query strings, headers, bodies) sent as
 * raw bytes to the API, and malformed tool calls (names, arguments) through
 * the tool-call path of a real run. Every answer is a 4xx JSON error in
 * Heroku's shape (or an ordinary success), every tool call a readable tool
 * result: never a 5xx, a hang or a crashed process. Loopback only; bounded in
 * count and time.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonValue, text, withCause } from '../support/fuzz';
import { reply, type ModelRequest } from '../doubles/model-server';
import { runAgent } from '../support/sse';
import { OTHER_API_KEY, useStack } from '../support/stack';

const stack = useStack({ apiEnv: { KEY_REQUESTS_PER_MINUTE: '1000000', KEY_MAX_CONCURRENT_RUNS: '1000', MAX_REQUEST_BYTES: '65536' } });

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends `request` as is and reads the answer until the server closes the
 * connection (10 s at most). `hangUp` also ends the sending side (a client
 * that gives up on a body shorter than its Content-Length).
 */
function sendRaw(port: number, request: Buffer, hangUp: boolean): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 10 s to ${JSON.stringify(request.toString('latin1').slice(0, 300))}`));
    }, 10_000);
    socket.on('data', (b: Buffer) => chunks.push(b));
    socket.on('error', () => undefined); // a reset after the answer is fine; a missing answer fails below
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split < 0 ? all.length : split).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      // Only the first answer: bytes past a wrong Content-Length are read as a next request, and answered too.
      const rest = all.subarray(split < 0 ? all.length : split + 4);
      const length = /^content-length: (\d+)$/im.exec(head)?.[1];
      resolve({ status, headers: head, body: (length ? rest.subarray(0, Number(length)) : dechunk(head, rest)).toString('utf8') });
    });
    if (hangUp) socket.end(request);
    else socket.write(request);
  });
}

/** The body of a chunked answer, chunk sizes being in bytes. */
function dechunk(head: string, body: Buffer): Buffer {
  if (!/^transfer-encoding: chunked$/im.test(head)) return body;
  const parts: Buffer[] = [];
  for (let rest = body; ;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(rest.subarray(eol + 2, eol + 2 + size));
    rest = rest.subarray(eol + 2 + size + 2);
  }
}

/** A valid request body, so that mutations of it get past the first checks. */
const VALID_BODY = {
  model: 'm',
  messages: [{ role: 'user', content: 'hi' }],
  tools: [{ type: 'heroku_tool', name: 'html_to_markdown', runtime_params: { max_calls: 2, ttl_seconds: 10 } }],
};

/** A body: garbage, any JSON, or the valid body with one field replaced by anything. */
const body = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  jsonValue.map((v) => Buffer.from(JSON.stringify(v) ?? '')),
  fc
    .tuple(fc.constantFrom('model', 'messages', 'tools', 'temperature', 'top_p', 'stop', 'max_tokens_per_inference_request'), jsonValue)
    .map(([field, value]) => Buffer.from(JSON.stringify({ ...VALID_BODY, [field]: value }))),
  fc
    .tuple(fc.constantFrom('name', 'type', 'runtime_params', 'description'), jsonValue)
    .map(([field, value]) => Buffer.from(JSON.stringify({ ...VALID_BODY, tools: [{ ...VALID_BODY.tools[0], [field]: value }] }))),
  fc.tuple(fc.constantFrom('target_app_name', 'dyno_size', 'ttl_seconds', 'max_calls', 'tool_params'), jsonValue).map(([field, value]) =>
    Buffer.from(
      JSON.stringify({
        ...VALID_BODY,
        tools: [{ ...VALID_BODY.tools[0], runtime_params: { ...VALID_BODY.tools[0]!.runtime_params, [field]: value } }],
      }),
    ),
  ),
  fc.nat({ max: 300 }).map((depth) => Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`)),
);

const runId = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 24, maxLength: 24 }).map((h) => `chatcmpl-${h}`),
  text.map((t) => encodeURIComponent(t)),
  text,
);
const path = fc.oneof(
  fc.constantFrom('/v1/agents/heroku', '/v1/agents/runs', '/v1/mcp/servers', '/v1/mcp/servers/sync', '/healthz', '/', '/v1', '//v1/agents/heroku'),
  runId.map((id) => `/v1/agents/runs/${id}`),
  runId.map((id) => `/v1/agents/runs/${id}/stream`),
  runId.map((id) => `/v1/agents/runs/${id}/cancel`),
  text.map((t) => `/v1/${t}`),
  fc.string({ maxLength: 3000 }).map((t) => `/${encodeURIComponent(t)}`),
);
const query = fc.oneof(
  fc.constant(''),
  fc
    .array(fc.tuple(fc.constantFrom('limit', 'status', 'after', 'limit[]', 'status[x]', '__proto__', 'constructor'), text), { maxLength: 4 })
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`),
  text.map((t) => `?${t}`),
);
const authorization = fc.oneof(
  fc.constant(`Bearer ${OTHER_API_KEY}`),
  fc.constant(`Bearer ${OTHER_API_KEY}`),
  fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic abc', `bearer   ${OTHER_API_KEY}   `),
  text.map((t) => `Bearer ${t}`),
);
/** Header values as bytes: some with characters the HTTP parser refuses. */
const headerValue = fc.oneof(text, fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom('-1', '0', '99999999999999999999', '1.5', 'abc'));
const headers = fc.record({
  authorization,
  contentType: fc.constantFrom(
    'application/json',
    'text/plain',
    'application/json; charset=utf-16',
    'multipart/form-data',
    '',
    'application/x-www-form-urlencoded',
  ),
  extra: fc.array(
    fc.tuple(
      fc.constantFrom('Last-Event-ID', 'Idempotency-Key', 'Accept', 'Content-Encoding', 'Transfer-Encoding', 'X-Forwarded-For', 'Expect'),
      headerValue,
    ),
    {
      maxLength: 3,
    },
  ),
});
const request = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), fc.string({ minLength: 1, maxLength: 8 })),
  path,
  query,
  headers,
  body,
  lengthDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -5, max: 5 })),
});

type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

function raw(r: FuzzRequest): Buffer {
  const lines = [
    `${r.method} ${r.path}${r.query} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
    `Authorization: ${r.headers.authorization}`,
    `Content-Type: ${r.headers.contentType}`,
    ...r.headers.extra.map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Math.max(0, r.body.length + r.lengthDelta)}`,
  ];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), r.body]);
}

describe('fuzzing the API', () => {
  test('thousands of malformed requests: each answer is a success or a 4xx in Heroku shape; the API stays up', async () => {
    stack.model.setHandler(() => reply.text('fine'));
    const port = Number(new URL(stack.apiUrl).port);
    const seen = new Map<number, number>();
    await fc
      .assert(
        fc.asyncProperty(request, async (r) => {
          const answer = await sendRaw(port, raw(r), r.lengthDelta > 0);
          seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
          // A body shorter than its Content-Length, then the end of the connection: nobody is left to answer.
          if (answer.status === 0 && r.lengthDelta > 0) return;
          assert.ok(answer.status >= 200 && answer.status < 500, `status ${answer.status}: ${answer.headers} ${answer.body.slice(0, 300)}`);
          if (answer.status >= 400) {
            const parsed = JSON.parse(answer.body) as { error: { code: number; message: string; type: string } };
            assert.deepEqual(Object.keys(parsed), ['error']);
            assert.deepEqual(Object.keys(parsed.error).sort(), ['code', 'message', 'type']);
            assert.equal(parsed.error.code, answer.status);
            assert.ok(parsed.error.message.length > 0);
          }
        }),
        { numRuns: 2500, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: false },
      )
      .catch(withCause);
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    assert.ok(total >= 1000, `only ${total} requests in the time limit`);
    assert.ok(
      [...seen.keys()].some((s) => s >= 400),
      `answers: ${JSON.stringify([...seen])}`,
    );
    assert.equal(stack.api.child?.exitCode, null, 'the API process is still running');
    assert.equal((await fetch(`${stack.apiUrl}/healthz`)).status, 200);
  });
});

describe('fuzzing the tool-call path', () => {
  test('malformed tool names and arguments from the model all come back as readable tool results', async () => {
    const toolName = fc.oneof(
      fc.constantFrom('dyno_run_command', 'postgres_run_query', 'html_to_markdown', 'pdf_to_markdown', 'code_exec_python'),
      fc.constantFrom('dyno_run_command', 'postgres_run_query', 'html_to_markdown'),
      text,
    );
    const args = fc.oneof(
      text,
      jsonValue.map((v) => JSON.stringify(v) ?? ''),
      fc.record({ url: jsonValue, query: jsonValue, n: jsonValue, code: jsonValue }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      fc.nat({ max: 2000 }).map((depth) => `{"n":${'['.repeat(depth)}${']'.repeat(depth)}}`),
    );
    const calls = fc.sample(fc.tuple(toolName, args), { numRuns: 200, seed: 7 });
    const batches = [calls.slice(0, 70), calls.slice(70, 140), calls.slice(140)];
    stack.model.setHandler((req: ModelRequest) => {
      const done = req.body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
      const batch = batches[done];
      return batch ? reply.toolCalls(batch.map(([name, a]) => ({ name, arguments: a }))) : reply.text('fuzzed');
    });
    const runtime = { max_calls: 100, ttl_seconds: 10 };
    const res = await runAgent(stack, {
      model: 'm',
      messages: [{ role: 'user', content: 'fuzz' }],
      tools: [
        {
          type: 'heroku_tool',
          name: 'dyno_run_command',
          runtime_params: {
            ...runtime,
            target_app_name: 'fuzz-app',
            tool_params: {
              cmd: 'echo "$TOOL_ARGUMENTS" | head -c 100',
              description: 'd',
              parameters: { type: 'object', properties: { n: { type: 'integer' } } },
            },
          },
        },
        { type: 'heroku_tool', name: 'postgres_run_query', runtime_params: { ...runtime, tool_params: { db_attachment: 'NO_SUCH' } } },
        { type: 'heroku_tool', name: 'html_to_markdown', runtime_params: runtime },
        { type: 'heroku_tool', name: 'pdf_to_markdown', runtime_params: runtime },
        { type: 'heroku_tool', name: 'code_exec_python', runtime_params: runtime },
      ],
    });
    assert.equal(res.status, 200);
    assert.equal(res.frames.filter((f) => f.event === 'error').length, 0, res.raw.slice(-500));
    const toolMessages = res.messages.filter((m) => m.object === 'tool.completion');
    assert.equal(toolMessages.length, calls.length);
    for (const [i, m] of toolMessages.entries()) {
      const [name] = calls[i]!;
      assert.match(m.choices[0].message.content, /^Tool '.*' returned result: [\s\S]+/, `call ${i} to ${JSON.stringify(name)}`);
    }
    assert.equal(res.messages.at(-1).choices[0].message.content, 'fuzzed');
    assert.equal(stack.worker.child?.exitCode, null, 'the worker is still running');
  });
});
