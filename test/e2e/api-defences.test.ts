/**
 * The API's defences against API-key holders (issue: hostile input): runs
 * belong to their key, key ids cannot be tested against guesses, the Heroku
 * token's authority is bounded by allow-lists, and nothing internal leaks
 * through the MCP listing or /healthz.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { keyIdOf } from '../../api/key-ids';
import { freePort } from '../../dev/dev-server';
import { reply, scriptedAgent, type ModelRequest } from '../doubles/model-server';
import { getJson, post, readStream, resume, runAgent, type Requester } from '../support/sse';
import { API_READY, KEY_ID_SECRET, OTHER_API_KEY, ServiceProcess, useStack } from '../support/stack';
import { logLines, theLine } from '../support/logs';
import { until } from '../support/wait';

const ROOT = path.resolve(__dirname, '../..');
const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
/** What the MCP registry file holds that must never be shown. */
const MCP_SECRETS = ['postgres://svc:pw-in-args@db.internal/prod', 'env-secret-value', 'Bearer header-secret', 'query-secret-token'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-defences-'));
const registry = path.join(dir, 'mcp.json');
fs.writeFileSync(
  registry,
  JSON.stringify({
    servers: [
      { namespace: 'db', command: process.execPath, args: ['-e', 'process.exit(3)', MCP_SECRETS[0]], env: { DB_PASSWORD: MCP_SECRETS[1] } },
      { namespace: 'search', url: `http://127.0.0.1:9/mcp?token=${MCP_SECRETS[3]}`, headers: { Authorization: MCP_SECRETS[2] } },
    ],
  }),
);

const stack = useStack({
  apiEnv: {
    AGENTS_ADMIN_KEYS: ADMIN_KEY,
    HEROKU_APPS: 'allowed-app,second-app',
    DYNO_SIZES: 'standard-1x,standard-2x',
    MAX_TOOL_CALLS: '10',
    MCP_SERVERS: registry,
  },
});

const keyA = (): Requester => stack;
const keyB = (): Requester => ({ apiUrl: stack.apiUrl, apiKey: OTHER_API_KEY });
const admin = (): Requester => ({ apiUrl: stack.apiUrl, apiKey: ADMIN_KEY });

const textOf = (req: ModelRequest): string => String(req.body.messages.at(-1)?.content ?? '');
beforeEach(() =>
  // "slow" keeps its run going (a model call that answers after a minute) until it is cancelled.
  stack.model.setHandler((req) => (textOf(req) === 'slow' ? { ...reply.text('late'), delayMs: 60_000 } : scriptedAgent(req))),
);

const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });

/** Starts a run that keeps going; returns its id once its first model call is under way. */
async function startSlowRun(who: Requester): Promise<string> {
  const res = await post(who, ask('slow'));
  assert.equal(res.status, 200);
  const runId = res.headers.get('agent-run-id')!;
  await res.body?.cancel(); // the client goes away, the run goes on
  return runId;
}

async function cancelAndWait(runId: string): Promise<void> {
  await fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
  await until(async () => (await getJson(admin(), `/v1/agents/runs/${runId}`)).body.status === 'cancelled', `run ${runId} cancelled`);
}

/** Every answer about someone else's run, with its id swapped for an unknown one, is the answer about the unknown one. */
async function answers(who: Requester, runId: string) {
  const auth = { Authorization: `Bearer ${who.apiKey}` };
  const read = await getJson(who, `/v1/agents/runs/${runId}`);
  const stream = await resume(who, runId);
  const resumed = await resume(who, runId, { 'Last-Event-ID': '0' });
  const afterQuery = await resume(who, runId, {}, '?after=0');
  const cancel = await fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/cancel`, { method: 'POST', headers: auth });
  const cancelBody: unknown = await cancel.json();
  const shape = (status: number, body: unknown) => ({ status, body: JSON.parse(JSON.stringify(body).replaceAll(runId, '<id>')) as unknown });
  return [
    shape(read.status, read.body),
    shape(stream.status, stream.json),
    shape(resumed.status, resumed.json),
    shape(afterQuery.status, afterQuery.json),
    shape(cancel.status, cancelBody),
  ];
}

const listIds = async (who: Requester, query = '') => {
  const { status, body } = await getJson(who, `/v1/agents/runs?limit=100${query}`);
  assert.equal(status, 200);
  return (body.data as { id: string }[]).map((r) => r.id);
};

describe('runs belong to their key', () => {
  test("another key's run is a 404 exactly like an unknown run: read, stream, resume, cancel", async () => {
    const runId = await startSlowRun(keyA());
    try {
      const unknown = 'chatcmpl-000000000000000000000000';
      const expected = {
        status: 404,
        body: { error: { code: 404, message: "no run with id '<id>'", type: 'not_found_error' } },
      };
      assert.deepEqual(await answers(keyB(), unknown), Array(5).fill(expected));
      assert.deepEqual(await answers(keyB(), runId), Array(5).fill(expected));
      // B's cancel did nothing: the run still runs, and its owner sees it.
      const mine = await getJson(keyA(), `/v1/agents/runs/${runId}`);
      assert.equal(mine.status, 200);
      assert.equal(mine.body.status, 'running');
    } finally {
      await cancelAndWait(runId);
    }
  });

  test("the list shows only the caller's runs; an admin key sees every run", async () => {
    const a = await runAgent(keyA(), ask('from A'));
    const b = await runAgent(keyB(), ask('from B'));
    const runA = a.headers.get('agent-run-id')!;
    const runB = b.headers.get('agent-run-id')!;
    const listA = await listIds(keyA());
    const listB = await listIds(keyB(), '&status=completed');
    assert.ok(listA.includes(runA) && !listA.includes(runB), 'A sees its run and not B');
    assert.ok(listB.includes(runB) && !listB.includes(runA), 'B sees its run and not A');
    const all = await listIds(admin());
    assert.ok(all.includes(runA) && all.includes(runB), 'the admin sees both');
  });

  test("an admin key reads, streams and cancels another key's run", async () => {
    const runId = await startSlowRun(keyA());
    const read = await getJson(admin(), `/v1/agents/runs/${runId}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, 'running');
    const streaming = fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/stream`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
    const cancel = await fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/cancel`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(cancel.status, 202);
    assert.deepEqual(await cancel.json(), { id: runId, status: 'cancelling' });
    const streamed = await readStream(await streaming);
    assert.deepEqual(
      streamed.frames.map((f) => f.event),
      ['error', 'done'],
    );
    assert.equal(JSON.parse(streamed.frames[0]!.data).error.type, 'cancelled');
    assert.equal((await getJson(keyA(), `/v1/agents/runs/${runId}`)).body.status, 'cancelled');
  });

  test('the same Idempotency-Key from two keys names two runs, each its owner’s', async () => {
    const headers = { 'Idempotency-Key': `shared-${Date.now()}` };
    const a = await runAgent(keyA(), ask('same body'), headers);
    const b = await runAgent(keyB(), ask('same body'), headers);
    const runA = a.headers.get('agent-run-id')!;
    const runB = b.headers.get('agent-run-id')!;
    assert.notEqual(runA, runB);
    assert.equal((await getJson(keyA(), `/v1/agents/runs/${runA}`)).status, 200);
    assert.equal((await getJson(keyA(), `/v1/agents/runs/${runB}`)).status, 404);
    // Again from A: attached to A's run, replayed from offset 0.
    const again = await runAgent(keyA(), ask('same body'), headers);
    assert.equal(again.headers.get('agent-run-id'), runA);
    assert.equal(again.messages.length, 1);
  });

  test('runs carry a keyed hash of their key: without AGENTS_KEY_ID_SECRET a guess cannot be checked', async () => {
    const res = await runAgent(keyA(), ask('whose run'));
    const runId = res.headers.get('agent-run-id')!;
    const description = await stack.client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`).describe();
    const id = description.searchAttributes.AgentApiKeyId?.[0];
    assert.equal(id, keyIdOf(KEY_ID_SECRET, stack.apiKey));
    assert.equal(description.memo?.apiKeyId, id);
    assert.match(String(id), /^key_[0-9a-f]{32}$/);
    // Neither a plain hash of the key nor the same HMAC under another secret gives it.
    assert.notEqual(id, `key_${createHash('sha256').update(stack.apiKey).digest('hex').slice(0, 32)}`);
    assert.notEqual(id, keyIdOf('another-secret-of-at-least-32-characters', stack.apiKey));
  });
});

describe('the API refuses to start without safe keys', () => {
  // Not spawnSync: a blocked event loop would let the stack's idle HTTP connections go stale under the next test.
  const startApi = (env: Record<string, string>) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api/main.ts')], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '1', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      });
      // The refusal is a JSON log line on stdout (common/log.ts); stderr is kept too, so nothing printed anywhere escapes the checks.
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
  const good = { AGENTS_API_KEYS: OTHER_API_KEY, AGENTS_KEY_ID_SECRET: KEY_ID_SECRET };

  test('each refusal names the variable', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ AGENTS_API_KEYS: OTHER_API_KEY }, /^cannot run: AGENTS_KEY_ID_SECRET is not set: /],
      [{ ...good, AGENTS_KEY_ID_SECRET: 'short-secret' }, /^cannot run: AGENTS_KEY_ID_SECRET must be at least 32 characters long, got 12/],
      [
        { ...good, AGENTS_API_KEYS: `${OTHER_API_KEY},short-key` },
        /^cannot run: AGENTS_API_KEYS: key 2 of 2 is 9 characters long; keys must be at least 24 characters/,
      ],
      [
        { ...good, AGENTS_ADMIN_KEYS: 'admin' },
        /^cannot run: AGENTS_ADMIN_KEYS: key 1 of 1 is 5 characters long; keys must be at least 24 characters/,
      ],
    ];
    for (const [env, message] of cases) {
      const result = await startApi(env);
      assert.equal(result.status, 1, JSON.stringify(env));
      const refusal = theLine(logLines(result.stdout), /^cannot run: /);
      assert.deepEqual([refusal.level, refusal.name], ['error', 'api']);
      assert.match(refusal.msg, message);
      assert.equal(`${result.stdout}${result.stderr}`.includes('short-key'), false, 'a key is never printed');
    }
  });
});

describe("the Heroku token's authority is bounded", () => {
  const dynoTool = (runtime: Record<string, unknown>) => ({
    type: 'heroku_tool',
    name: 'dyno_run_command',
    runtime_params: { tool_params: { cmd: 'echo hi', description: 'hi' }, ...runtime },
  });
  const withTools = (...tools: unknown[]) => ({ model: 'm', messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }], tools });

  /** Posts, and checks that nothing started: no model call, no dyno, no run. */
  async function refused(body: unknown) {
    const [models, creates, runs] = [stack.model.requests.length, stack.heroku.creates.length, (await listIds(admin())).length];
    const res = await post(stack, body);
    const json: unknown = await res.json();
    assert.equal(stack.model.requests.length, models);
    assert.equal(stack.heroku.creates.length, creates);
    assert.equal((await listIds(admin())).length, runs);
    return { status: res.status, json };
  }

  test('an app outside HEROKU_APPS is a 403 naming the field, before any run starts', async () => {
    assert.deepEqual(
      await refused(
        withTools(dynoTool({ target_app_name: 'allowed-app' }), {
          ...dynoTool({ target_app_name: 'their-app' }),
          name: 'code_exec_python',
          runtime_params: { target_app_name: 'their-app' },
        }),
      ),
      {
        status: 403,
        json: {
          error: {
            code: 403,
            message: "tools[1].runtime_params.target_app_name 'their-app' is not allowed on this server (HEROKU_APPS: allowed-app, second-app)",
            type: 'authorization_error',
          },
        },
      },
    );
  });

  test('a dyno size outside DYNO_SIZES is a 403 naming the field', async () => {
    assert.deepEqual(await refused(withTools(dynoTool({ target_app_name: 'allowed-app', dyno_size: 'performance-l' }))), {
      status: 403,
      json: {
        error: {
          code: 403,
          message: "tools[0].runtime_params.dyno_size 'performance-l' is not allowed on this server (DYNO_SIZES: standard-1x, standard-2x)",
          type: 'authorization_error',
        },
      },
    });
  });

  test('max_calls above MAX_TOOL_CALLS is a 400 naming the field and the variable', async () => {
    assert.deepEqual(await refused(withTools(dynoTool({ target_app_name: 'allowed-app', max_calls: 11 }))), {
      status: 400,
      json: {
        error: {
          code: 400,
          message: 'tools[0].runtime_params.max_calls must be at most 10 on this server (MAX_TOOL_CALLS)',
          type: 'invalid_request_error',
        },
      },
    });
  });

  test('within the lists, the dyno runs in the allowed app with the allowed size', async () => {
    const res = await runAgent(stack, withTools(dynoTool({ target_app_name: 'second-app', dyno_size: 'standard-2x', max_calls: 10 })));
    assert.equal(res.status, 200);
    assert.equal(res.messages[1].choices[0].message.content, "Tool 'dyno_run_command' returned result: hi");
    const create = stack.heroku.creates.at(-1)!;
    assert.equal(create.app, 'second-app');
    assert.equal(create.body.size, 'standard-2x');
  });
});

describe('no leaks', () => {
  test('GET /v1/mcp/servers shows no args, env or headers', async () => {
    const { status, body } = await getJson(stack, '/v1/mcp/servers');
    assert.equal(status, 200);
    const text = JSON.stringify(body);
    for (const secret of [...MCP_SECRETS, 'process.exit']) assert.equal(text.includes(secret), false, `the listing shows ${secret}`);
    assert.equal(body[0].process_command, process.execPath);
    assert.equal(body[1].url, 'http://127.0.0.1:9/mcp');
  });

  test('/healthz says only ok to a caller without a key, the details to one with a key', async () => {
    for (const headers of [{}, { Authorization: 'Bearer not-a-key-of-this-server-at-all' }] as Record<string, string>[]) {
      const res = await fetch(`${stack.apiUrl}/healthz`, { headers });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true });
    }
    const res = await fetch(`${stack.apiUrl}/healthz`, { headers: { Authorization: `Bearer ${stack.apiKey}` } });
    const details = await res.json();
    assert.deepEqual(Object.keys(details), ['ok', 'temporal', 'workers', 'api_processes', 'streams']);
    assert.deepEqual({ ...details, streams: undefined }, { ok: true, temporal: 'reachable', workers: 1, api_processes: 1, streams: undefined });
  });

  test("/healthz keeps Temporal's error to itself when it cannot reach Temporal", async () => {
    const port = await freePort();
    const lonely = new ServiceProcess(
      'api-without-temporal',
      'api/main.ts',
      () => ({
        PATH: process.env.PATH,
        PORT: String(port),
        AGENTS_API_KEYS: stack.apiKey,
        AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
        TEMPORAL_ADDRESS: `127.0.0.1:${port + 1}`,
      }),
      API_READY,
    );
    await lonely.start();
    try {
      const down = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { ok: false });
      const detailed = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { Authorization: `Bearer ${stack.apiKey}` } });
      assert.match((await detailed.json()).reason, /^cannot reach Temporal/);
    } finally {
      await lonely.kill('SIGKILL');
    }
  });
});
