/**
 * A request's JSON Schema is hostile input: a pattern that backtracks
 * exponentially must not block the worker, a huge or deeply nested schema is
 * a 400 before anything compiles it, and the API keeps answering other
 * requests promptly while such requests arrive.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { startApi } from '../../api/server';
import { createLog } from '../../common/log';
import { apiConfig, temporalConfig } from '../../common/config';
import { freePort } from '../../dev/dev-server';
import { post, runAgent } from '../support/sse';
import { KEY_ID_SECRET, useStack } from '../support/stack';
import { within } from '../support/wait';

const stack = useStack();

const REDOS_SCHEMA = { type: 'object', properties: { s: { type: 'string', pattern: '^(a|aa)+$' } }, required: ['s'] };

const dynoTool = (parameters: Record<string, unknown>) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo "got $TOOL_ARG_S"', description: 'echoes s', parameters } },
});

const request = (parameters: Record<string, unknown>, content = 'hi') => ({
  model: 'm',
  messages: [{ role: 'user', content }],
  tools: [dynoTool(parameters)],
});

/** About 619 KiB of JSON Schema: ten thousand string properties with descriptions. */
function hugeSchema(): Record<string, unknown> {
  const properties = Object.fromEntries(
    Array.from({ length: 10_000 }, (_, i) => [`property_${i}`, { type: 'string', description: `field number ${i} of many` }]),
  );
  return { type: 'object', properties };
}

async function refusal(body: unknown): Promise<{ status: number; message: string; ms: number }> {
  const started = Date.now();
  const res = await post(stack, body);
  const json = (await res.json()) as { error: { message: string } };
  return { status: res.status, message: json.error.message, ms: Date.now() - started };
}

describe('request schemas', () => {
  test('a pattern that backtracks exponentially checks a 43-character argument at once (RE2)', async () => {
    const arg = `${'a'.repeat(42)}!`;
    const run = await within(
      runAgent(stack, request(REDOS_SCHEMA, `CALL dyno_run_command ${JSON.stringify({ s: arg })}`)),
      'the run with the hostile argument (it blocked the worker for 52 s with backtracking regexes)',
      30_000,
    );
    const results = run.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content);
    assert.deepEqual(results, [
      `Tool 'dyno_run_command' returned result: Error: invalid arguments: arguments/s must match pattern "^(a|aa)+$"; the tool was not run.`,
    ]);

    const ok = await runAgent(stack, request(REDOS_SCHEMA, 'CALL dyno_run_command {"s":"aaaa"}'));
    assert.deepEqual(
      ok.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content),
      ["Tool 'dyno_run_command' returned result: got aaaa"],
    );
  });

  test('a 619 KiB schema is a 400 naming the field and TOOL_SCHEMA_MAX_BYTES', async () => {
    const schema = hugeSchema();
    const bytes = Buffer.byteLength(JSON.stringify(schema));
    assert.ok(bytes > 619 * 1024, `${bytes}`);
    const { status, message, ms } = await refusal(request(schema));
    assert.equal(status, 400);
    assert.equal(
      message,
      "tools[0].runtime_params.tool_params.parameters is larger than 32768 bytes of JSON, this server's limit (TOOL_SCHEMA_MAX_BYTES)",
    );
    assert.ok(ms < 3_000, `the refusal took ${ms} ms (compiling it took 4-5 s)`);
  });

  test('deep nesting and patterns RE2 cannot run are 400s naming the field', async () => {
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 50; i++) deep = { type: 'object', properties: { a: deep } };
    assert.deepEqual(await refusal(request(deep)).then((r) => [r.status, r.message]), [
      400,
      "tools[0].runtime_params.tool_params.parameters nests more than 32 levels deep, this server's limit (TOOL_SCHEMA_MAX_DEPTH)",
    ]);
    const lookahead = { type: 'object', properties: { s: { type: 'string', pattern: '^(?!admin)' } } };
    assert.deepEqual(await refusal(request(lookahead)).then((r) => [r.status, r.message]), [
      400,
      'tools[0].runtime_params.tool_params.parameters has a pattern this server cannot run at /properties/s/pattern: "^(?!admin)" (error parsing regexp: invalid or unsupported Perl syntax: `(?!`); patterns run on RE2, in linear time, so lookaround and backreferences are not supported',
    ]);
  });

  test('the API’s event loop is never held up 1 s while hostile schemas arrive', async () => {
    // The API runs in this process, so perf_hooks sees its event loop (the test's own part is sending requests).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-api-'));
    const apiKey = 'event-loop-test-key-0123456789';
    const server = await startApi(
      temporalConfig({ TEMPORAL_ADDRESS: stack.temporal.address }),
      apiConfig({ AGENTS_API_KEYS: apiKey, AGENTS_KEY_ID_SECRET: KEY_ID_SECRET, PORT: String(await freePort()), PAYLOAD_STORE_DIR: dir }),
      createLog('api'),
    );
    const api = { apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey };
    const huge = JSON.stringify(request(hugeSchema()));
    const lane = async (n: number) => {
      for (let i = 0; i < n; i++) assert.equal((await post(api, huge)).status, 400);
    };
    const redos = async (i: number) => {
      const run = await runAgent(api, request(REDOS_SCHEMA, `CALL dyno_run_command ${JSON.stringify({ s: `${'a'.repeat(40 + i)}!` })}`));
      assert.equal(run.status, 200);
    };
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let idleMax: number;
    try {
      const hostile = () => within(Promise.all([lane(6), lane(6), redos(1), redos(2), redos(3)]), 'the hostile requests', 60_000);
      // A first round unmeasured: the first of anything costs once per process (the meta-schema's compilation, the
      // connection to Temporal, protobuf encoders built on first use).
      await hostile();
      // What the machine alone does to the loop, for the message: a machine loaded far past its cores delays even an idle one.
      delay.enable();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      idleMax = delay.max;
      delay.reset();
      await hostile();
      delay.disable();
    } finally {
      await server.shutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    // Compiling one such schema held the loop 4-5 s; a 1 s bound catches that and leaves a busy 2-core machine room to schedule.
    assert.ok(
      delay.max / 1e6 < 1_000,
      `the event loop was held up ${ms(delay.max)} ms (p50 ${ms(delay.percentile(50))} ms, ${delay.count} samples; idle, the longest delay was ${ms(idleMax)} ms)`,
    );
  });
});
