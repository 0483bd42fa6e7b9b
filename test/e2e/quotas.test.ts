/**
 * Quotas and back-pressure: a key's request rate and concurrent runs are
 * capped across two API processes on one Temporal; clients that never read
 * cost the API bounded memory; the payload store drops what no retained run
 * references.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { freePort } from '../../dev/dev-server';
import { reply, scriptedAgent, type ModelRequest } from '../doubles/model-server';
import { getJson, post, readStream, resume, runAgent, type Requester } from '../support/sse';
import { API_READY, KEY_ID_SECRET, OTHER_API_KEY, ServiceProcess, useStack } from '../support/stack';
import { until, within } from '../support/wait';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
const payloadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quotas-payloads-'));
const apiEnv = {
  KEY_REQUESTS_PER_MINUTE: '360',
  KEY_MAX_CONCURRENT_RUNS: '2',
  AGENTS_ADMIN_KEYS: ADMIN_KEY,
  PAYLOAD_STORE_DIR: payloadDir,
  PAYLOAD_SWEEP_INTERVAL_SECONDS: '1',
};
const stack = useStack({ apiEnv, workerEnv: { PAYLOAD_STORE_DIR: payloadDir } });

/**
 * How many assistant messages a flood run has, each with this much text: more
 * in all (7 MB) than the kernel takes into a socket's send buffer (4 MB).
 */
const FLOOD_STEPS = 24;
const FLOOD_TEXT_BYTES = 300_000;
const STALLED_CLIENTS = 50;
const lastUser = (req: ModelRequest): string => String(req.body.messages.findLast((m: { role: string }) => m.role === 'user')?.content ?? '');
beforeEach(() =>
  stack.model.setHandler((req) => {
    const prompt = lastUser(req);
    if (prompt === 'slow') return { ...reply.text('late'), delayMs: 60_000 };
    if (prompt === 'flood') {
      const step = req.body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
      if (step >= FLOOD_STEPS - 1) return reply.text('flood over');
      return reply.toolCalls([{ name: 'no_such_tool', arguments: '{}' }], `${step}:${'x'.repeat(FLOOD_TEXT_BYTES)}`);
    }
    return scriptedAgent(req);
  }),
);

const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });
const at = (apiUrl: string, apiKey: string): Requester => ({ apiUrl, apiKey });

describe('two API processes on one Temporal', () => {
  const second = { url: '', process: undefined as ServiceProcess | undefined };
  before(async () => {
    const port = await freePort();
    second.url = `http://127.0.0.1:${port}`;
    second.process = new ServiceProcess(
      'api 2',
      'api/main.ts',
      () => ({
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: stack.temporal.address,
        PORT: String(port),
        AGENTS_API_KEYS: `${OTHER_API_KEY},${stack.apiKey}`,
        AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
        ...apiEnv,
      }),
      API_READY,
    );
    await second.process.start();
    // Each process counts the other once Temporal lists both as pollers of the API queue.
    for (const url of [stack.apiUrl, second.url]) {
      await until(async () => {
        const res = await fetch(`${url}/healthz`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
        return (await res.json()).api_processes === 2;
      }, `${url} to count two API processes`);
    }
  });
  after(async () => {
    await second.process?.kill('SIGTERM');
  });

  test('KEY_REQUESTS_PER_MINUTE holds for the two processes together; another key is not affected', async () => {
    const answers: Response[] = [];
    for (let i = 0; i < 370; i++) {
      const url = i % 2 === 0 ? stack.apiUrl : second.url;
      answers.push(await fetch(`${url}/v1/agents/runs?limit=1`, { headers: { Authorization: `Bearer ${OTHER_API_KEY}` } }));
    }
    const statuses = answers.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 360, statuses.join(' '));
    assert.deepEqual(statuses.slice(360), Array(10).fill(429));

    const limited = answers.at(-1)!;
    const body = await limited.json();
    assert.equal(body.error.code, 429);
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(
      body.error.message,
      /^too many requests: this key may make 360 requests per minute \(180 on each of the 2 API processes\); retry after \d+ s, or raise KEY_REQUESTS_PER_MINUTE$/,
    );
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('x-ratelimit-limit'), '180');
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    const reset = Number(limited.headers.get('x-ratelimit-reset'));
    assert.ok(reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 61, `x-ratelimit-reset ${reset}`);
    // Every answer says how much is left.
    assert.equal(answers[0]!.headers.get('x-ratelimit-remaining'), '179');

    for (const url of [stack.apiUrl, second.url]) assert.equal((await getJson(at(url, stack.apiKey), '/v1/agents/runs?limit=1')).status, 200);
  });

  test('KEY_MAX_CONCURRENT_RUNS counts the runs started through either process; bursts do not slip through', async () => {
    const started: string[] = [];
    try {
      // A burst of four on one process, with room for two.
      const keys = [0, 1, 2, 3].map((i) => `burst-${i}-${Date.now()}`);
      const burst = await Promise.all(keys.map((key) => post(at(stack.apiUrl, stack.apiKey), ask('slow'), { 'Idempotency-Key': key })));
      const ok = burst.filter((r) => r.status === 200);
      assert.equal(ok.length, 2, burst.map((r) => r.status).join(' '));
      for (const r of ok) {
        started.push(r.headers.get('agent-run-id')!);
        await r.body?.cancel();
      }
      const firstKey = keys[burst.indexOf(ok[0]!)]!;
      const refused = burst.find((r) => r.status === 429)!;
      assert.deepEqual(await refused.json(), {
        error: {
          code: 429,
          message: 'too many running runs: this key may have 2 at once (KEY_MAX_CONCURRENT_RUNS); wait for one to end or cancel one',
          type: 'rate_limit_error',
        },
      });
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal(refused.headers.get('x-ratelimit-limit'), '2');
      assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
      for (const r of burst) if (r.status === 429 && !r.bodyUsed) await r.body?.cancel();

      // The other process sees them too, once they are in visibility.
      await until(async () => (await runningRuns()).length === 2, 'both runs in visibility');
      const third = await post(at(second.url, stack.apiKey), ask('slow'));
      assert.equal(third.status, 429);
      await third.text();

      // Attaching to a running run starts nothing: allowed at the cap.
      const reattach = await post(at(second.url, stack.apiKey), ask('slow'), { 'Idempotency-Key': firstKey });
      assert.equal(reattach.status, 200);
      assert.equal(reattach.headers.get('agent-run-id'), started[0]);
      await reattach.body?.cancel();

      // One ends: room for one more.
      await cancel(started.shift()!);
      await until(async () => (await runningRuns()).length === 1, 'the cancelled run to leave visibility');
      const fourth = await post(at(second.url, stack.apiKey), ask('slow'));
      assert.equal(fourth.status, 200);
      started.push(fourth.headers.get('agent-run-id')!);
      await fourth.body?.cancel();
    } finally {
      await Promise.all(started.map(cancel));
    }
  });
});

/** Ids of the running runs, straight from Temporal. */
async function runningRuns(): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of stack.client.workflow.list({ query: "WorkflowType = 'agentRun' AND ExecutionStatus = 'Running'" }))
    ids.push(info.workflowId);
  return ids;
}

async function cancel(runId: string): Promise<void> {
  await fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
  const handle = stack.client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`);
  await until(async () => (await handle.describe()).status.name === 'CANCELLED', `run ${runId} cancelled`);
}

/** The run of the back-pressure test: its large payloads must survive the sweeper. */
let floodRunId = '';

describe('back-pressure', () => {
  /**
   * Clients that send their request and then never read a byte, with small
   * receive buffers (so the kernel holds little for them and the API would
   * have to buffer what it cannot send). Python, because Node cannot set
   * SO_RCVBUF on a TCP socket. Resolves once every request is sent.
   */
  const stalledClients = async (runId: string, count: number) => {
    const { port } = new URL(stack.apiUrl);
    const request = `GET /v1/agents/runs/${runId}/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`;
    const script = [
      'import socket, sys',
      'socks = []',
      `for _ in range(${count}):`,
      '    s = socket.socket()',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
      `    s.connect(("127.0.0.1", ${port}))`,
      `    s.sendall(${JSON.stringify(request)}.encode())`,
      '    socks.append(s)',
      'print("sent", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    await within(new Promise((resolve) => child.stdout.once('data', resolve)), 'the stalled clients to send their requests', 30_000);
    return child;
  };
  const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

  test('clients that never read cost the API bounded memory; a reading client and other runs are unharmed', async () => {
    const pid = stack.api.child!.pid!;
    const before = rssOf(pid);
    const flood = await post(at(stack.apiUrl, ADMIN_KEY), ask('flood'));
    assert.equal(flood.status, 200);
    const runId = flood.headers.get('agent-run-id')!;
    floodRunId = runId;
    const reading = readStream(flood);
    const stalled = await stalledClients(runId, STALLED_CLIENTS);
    try {
      // Another run, while the flood goes on, streams as usual.
      const other = await within(runAgent(at(stack.apiUrl, stack.apiKey), ask('meanwhile')), 'an unrelated run', 60_000);
      assert.equal(other.status, 200, JSON.stringify(other.json));
      assert.equal(other.messages[0].choices[0].message.content, 'Echo: meanwhile');

      const read = await within(reading, 'the reading client to get the whole flood', 180_000);
      assert.equal(read.messages.length, FLOOD_STEPS * 2 - 1);
      assert.equal(read.messages.at(-1).choices[0].message.content, 'flood over');
      assert.equal(read.frames.at(-1)?.event, 'done');
      const floodBytes = read.raw.length;
      assert.ok(floodBytes > FLOOD_STEPS * FLOOD_TEXT_BYTES * 0.9, `the flood was ${floodBytes} bytes`);

      // The process did not take the run once per client...
      assert.ok(rssOf(pid) - before < (STALLED_CLIENTS * floodBytes) / 3, `RSS grew ${(rssOf(pid) - before) / 2 ** 20} MiB`);
      // ...because the stalled clients' streams hold at most a frame each (plus the socket's 16 KiB mark).
      const healthBody = await (await fetch(`${stack.apiUrl}/healthz`, { headers: { Authorization: `Bearer ${stack.apiKey}` } })).json();
      const { streams } = healthBody;
      assert.ok(streams.open >= STALLED_CLIENTS, `${streams.open} open streams`);
      const bound = STALLED_CLIENTS * (FLOOD_TEXT_BYTES + 32 * 1024);
      assert.ok(
        streams.buffered_bytes <= bound,
        `${streams.buffered_bytes} bytes buffered for ${STALLED_CLIENTS} clients of a ${floodBytes}-byte run`,
      );
    } finally {
      stalled.kill('SIGKILL');
    }
    const health = await fetch(`${stack.apiUrl}/healthz`);
    assert.deepEqual(await health.json(), { ok: true });
  });
});

describe('the payload store', () => {
  test('payloads no retained run can reference are dropped; the rest stay, and runs still replay', async () => {
    const day = 24 * 3600_000;
    const plant = (name: string, ageMs: number) => {
      const file = path.join(payloadDir, name);
      fs.writeFileSync(file, 'planted');
      const when = new Date(Date.now() - ageMs);
      fs.utimesSync(file, when, when);
      return file;
    };
    const runPayloads = fs.readdirSync(payloadDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
    assert.ok(runPayloads.length > 0, 'the runs so far stored payloads');
    const old = plant('a'.repeat(64), 30 * day);
    const oldPartial = plant(`${'b'.repeat(64)}.123.partial`, 30 * day);
    const recent = plant('c'.repeat(64), 10 * 60_000);
    const foreign = plant('notes.txt', 30 * day);

    await until(() => !fs.existsSync(old) && !fs.existsSync(oldPartial), 'the sweeper to drop payloads older than any retained run', 30_000);
    assert.ok(fs.existsSync(recent), 'a recent payload stays');
    assert.ok(fs.existsSync(foreign), 'files that are not payloads stay');
    for (const name of runPayloads) assert.ok(fs.existsSync(path.join(payloadDir, name)), `payload ${name} of a retained run stays`);

    // The flood run's large events are still readable from its history.
    assert.ok(floodRunId, 'the back-pressure test ran first');
    const replay = await resume(at(stack.apiUrl, ADMIN_KEY), floodRunId);
    assert.equal(replay.status, 200, replay.raw);
    assert.equal(replay.messages.length, FLOOD_STEPS * 2 - 1);
    assert.equal(replay.frames.at(-1)?.event, 'done');
  });
});
