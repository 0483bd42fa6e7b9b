/**
 * The durable stream (docs/api.md#part-b-durable-run-extensions): offsets, resume after a disconnect, replay
 * of finished runs, keep-alives, status, concurrency, and no secret anywhere
 * in a run's Temporal history or the services' logs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { reply, scriptedAgent } from '../doubles/model-server';
import { freePort } from '../../dev/dev-server';
import { API_READY, KEY_ID_SECRET, ServiceProcess, useStack } from '../support/stack';
import { allRunHistories, historyText } from '../support/history';
import { getJson, post, readStream, resume, runAgent } from '../support/sse';
import { until } from '../support/wait';

const stack = useStack({ apiEnv: { SSE_KEEPALIVE_MS: '300' } });

const dynoTool = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'my-app',
    max_calls: 5,
    tool_params: { cmd: 'echo "step $TOOL_ARG_N"', description: 'step', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
  },
};
/** Three tool calls in one message: 1 chat + 3 tool + 1 chat = 5 events. */
const threeSteps = {
  model: 'm',
  messages: [{ role: 'user', content: 'CALL dyno_run_command {"n":1}\nCALL dyno_run_command {"n":2}\nCALL dyno_run_command {"n":3}' }],
  tools: [dynoTool],
};

describe('resume and replay', () => {
  test('a client that disconnects misses nothing when it resumes with Last-Event-ID', async () => {
    const full = await runAgent(stack, threeSteps);
    assert.equal(full.messages.length, 5);

    const first = await readStream(await post(stack, threeSteps), { disconnectAfterMessages: 2 });
    const runId = first.headers.get('agent-run-id')!;
    const lastId = first.frames.filter((f) => f.event === 'message').at(-1)!.id!;
    const rest = await resume(stack, runId, { 'Last-Event-ID': lastId });
    assert.equal(rest.status, 200);
    assert.equal(rest.headers.get('agent-run-id'), runId);
    const ids = [...first.frames, ...rest.frames].filter((f) => f.event === 'message').map((f) => Number(f.id));
    assert.deepEqual(ids, [0, 1, 2, 3, 4]);
    // Every event the first stream parsed before it hung up (tool results of one reply may come in one batch), then the rest.
    const contents = [...first.messages, ...rest.messages].map((m) => m.choices[0].message.content);
    assert.deepEqual(
      contents,
      full.messages.map((m) => m.choices[0].message.content),
    );
    assert.equal(rest.frames.at(-1)!.event, 'done');
  });

  test('a finished run replays byte for byte, whole or after an offset', async () => {
    const original = await runAgent(stack, threeSteps);
    const runId = original.headers.get('agent-run-id')!;
    const replay = await resume(stack, runId);
    assert.equal(replay.raw.replace(/:keep-alive\n\n/g, ''), original.raw.replace(/:keep-alive\n\n/g, ''));

    const tail = await resume(stack, runId, {}, '?after=2');
    assert.deepEqual(
      tail.frames.filter((f) => f.event === 'message').map((f) => f.id),
      ['3', '4'],
    );
    const nothingLeft = await resume(stack, runId, { 'Last-Event-ID': '4' });
    assert.deepEqual(
      nothingLeft.frames.map((f) => f.event),
      ['done'],
    );
  });

  test('several clients of one live run each get every event once', async () => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 300 }) as never);
    try {
      const res = await post(stack, threeSteps);
      const runId = res.headers.get('agent-run-id')!;
      const [a, b, c] = await Promise.all([readStream(res), resume(stack, runId), resume(stack, runId, { 'Last-Event-ID': '0' })]);
      for (const r of [a, b])
        assert.deepEqual(
          r.frames.map((f) => f.id ?? f.event),
          ['0', '1', '2', '3', '4', 'done'],
        );
      assert.deepEqual(
        c.frames.map((f) => f.id ?? f.event),
        ['1', '2', '3', '4', 'done'],
      );
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
  });

  test('unknown run ids are 404 before any stream starts; bad offsets are 400', async () => {
    for (const id of ['chatcmpl-000000000000000000000000', 'not-a-run']) {
      const res = await getJson(stack, `/v1/agents/runs/${id}/stream`);
      assert.equal(res.status, 404);
      assert.equal(res.body.error.type, 'not_found_error');
      assert.equal((await getJson(stack, `/v1/agents/runs/${id}`)).status, 404);
    }
    const run = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'x' }] });
    const bad = await getJson(stack, `/v1/agents/runs/${run.headers.get('agent-run-id')}/stream?after=abc`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /after must be an integer/);
  });
});

describe('while a step runs', () => {
  test('keep-alive comments flow, and a disconnect does not stop the run', async () => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 1500 }) as never);
    try {
      const res = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'slow' }] });
      assert.ok(res.comments.includes('keep-alive'), 'expected :keep-alive comments');
      assert.match(res.raw, /^:keep-alive\n\n/);

      const dropped = await readStream(await post(stack, threeSteps), { disconnectAfterMessages: 1 });
      const runId = dropped.headers.get('agent-run-id')!;
      let status: any;
      await until(async () => (status = (await getJson(stack, `/v1/agents/runs/${runId}`)).body).status !== 'running', 'the run to end', 30_000);
      assert.equal(status.status, 'completed');
      assert.equal(status.events, 5);
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
  });
});

describe('operators', () => {
  test('a run is findable and readable in Temporal: id, summary, search attributes, activity summaries', async () => {
    const run = await runAgent(stack, { ...threeSteps, messages: [{ role: 'user', content: 'CALL dyno_run_command {"n":7}' }] });
    const runId = run.headers.get('agent-run-id')!;
    const handle = stack.client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`);
    const description = await handle.describe();
    assert.equal(await description.staticSummary(), 'm: CALL dyno_run_command {"n":7}');
    const attributes = Object.fromEntries(description.typedSearchAttributes.getAll().map(({ key, value }) => [key.name, value]));
    const tokens = run.messages.filter((m) => m.object === 'chat.completion').reduce((n, m) => n + m.usage.total_tokens, 0);
    assert.deepEqual(
      { AgentModel: attributes.AgentModel, AgentTools: attributes.AgentTools, AgentTotalTokens: attributes.AgentTotalTokens },
      { AgentModel: 'm', AgentTools: ['dyno_run_command'], AgentTotalTokens: tokens },
    );
    assert.match(String(attributes.AgentApiKeyId), /^key_[0-9a-f]{32}$/);
    const history = await handle.fetchHistory();
    const summaries = history.events!.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.userMetadata?.summary?.data);
    const text = summaries.map((d) => JSON.parse(Buffer.from(d as Uint8Array).toString()));
    assert.deepEqual(text, ['model call 1: m', 'tool call 1: dyno_run_command {"n":7}', 'model call 2: m']);
  });

  test('/healthz is 200 with a worker polling, 503 naming the reason when Temporal is unreachable', async () => {
    const auth = { headers: { Authorization: `Bearer ${stack.apiKey}` } };
    const ok = await fetch(`${stack.apiUrl}/healthz`, auth);
    assert.equal(ok.status, 200);
    const { ok: healthy, temporal, workers } = await ok.json();
    assert.deepEqual({ ok: healthy, temporal, workers }, { ok: true, temporal: 'reachable', workers: 1 });

    const port = await freePort();
    const nobodyListens = await freePort();
    const lonely = new ServiceProcess(
      'api-without-temporal',
      'api/main.ts',
      () => ({
        PATH: process.env.PATH,
        PORT: String(port),
        AGENTS_API_KEYS: stack.apiKey,
        AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
        TEMPORAL_ADDRESS: `127.0.0.1:${nobodyListens}`,
      }),
      API_READY,
    );
    await lonely.start();
    try {
      const down = await fetch(`http://127.0.0.1:${port}/healthz`, auth);
      assert.equal(down.status, 503, await down.clone().text());
      const body = await down.json();
      assert.equal(body.ok, false);
      assert.equal(body.temporal, 'unreachable');
      assert.match(body.reason, /^cannot reach Temporal/);
      const start = await post({ apiUrl: `http://127.0.0.1:${port}`, apiKey: stack.apiKey }, threeSteps);
      assert.equal(start.status, 503);
      assert.equal((await start.json()).error.type, 'server_error');
    } finally {
      await lonely.kill('SIGKILL');
    }
  });
});

describe('status', () => {
  test('reports status, model, usage totals, calls per tool and events', async () => {
    const run = await runAgent(stack, threeSteps);
    const runId = run.headers.get('agent-run-id')!;
    const { status, body } = await getJson(stack, `/v1/agents/runs/${runId}`);
    assert.equal(status, 200);
    const chats = run.messages.filter((m) => m.object === 'chat.completion');
    const sum = (k: string) => chats.reduce((n, m) => n + m.usage[k], 0);
    assert.deepEqual(body, {
      id: runId,
      workflow_id: `agent-run-${runId.slice('chatcmpl-'.length)}`,
      status: 'completed',
      model: 'm',
      created: body.created,
      usage: { prompt_tokens: sum('prompt_tokens'), completion_tokens: sum('completion_tokens'), total_tokens: sum('total_tokens') },
      model_calls: 2,
      tool_calls: { dyno_run_command: 3 },
      events: 5,
      error: null,
      // The final assistant message, as the last chat.completion carried it; no approvals were asked for.
      message: chats.at(-1).choices[0].message,
      pending_approvals: [],
      decided_approvals: [],
    });
    assert.ok(Math.abs(body.created - Date.now() / 1000) < 120);
  });

  test('lists recent runs, newest first, filtered by status', async () => {
    const ask = (model: string) => ({ model, messages: [{ role: 'user', content: 'x' }] });
    stack.model.setHandler((req) =>
      req.body.model === 'list-failed'
        ? reply.error(400, { error: { message: 'no such model' } })
        : req.body.model === 'list-running'
          ? reply.hang()
          : scriptedAgent(req),
    );
    try {
      const id = (r: { headers: Headers }) => r.headers.get('agent-run-id')!;
      const a = id(await runAgent(stack, ask('list-a')));
      const failed = id(await runAgent(stack, ask('list-failed')));
      const b = id(await runAgent(stack, ask('list-b')));
      const started = await post(stack, ask('list-running'));
      const running = id(started);
      await started.body?.cancel(); // the client goes away; the run goes on

      /** This test's runs as GET /v1/agents/runs lists them; visibility is eventually consistent, so wait for the expected list. */
      const lists = async (query: string, expected: string[]) => {
        let ids: string[] = [];
        const list = async () => {
          ids = (await getJson(stack, `/v1/agents/runs?${query}&limit=100`)).body.data
            .filter((r: any) => r.model.startsWith('list-'))
            .map((r: any) => r.id);
          return JSON.stringify(ids) === JSON.stringify(expected);
        };
        await until(list, `?${query} to list ${expected.join(', ')}`, 30_000).catch(() => assert.deepEqual(ids, expected, `?${query}`));
      };
      await lists('status=completed', [b, a]);
      await lists('status=failed', [failed]);
      await lists('status=running', [running]);
      await lists('status=cancelled', []);
      await lists('', [running, b, failed, a]);
      assert.equal((await getJson(stack, `/v1/agents/runs/${running}/cancel`, { method: 'POST' })).status, 202);
      await lists('status=cancelled', [running]);
      await lists('status=running', []);
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
    assert.equal((await getJson(stack, '/v1/agents/runs?status=bogus')).status, 400);
    assert.equal((await getJson(stack, '/v1/agents/runs?limit=0')).status, 400);
    const one = await getJson(stack, '/v1/agents/runs?limit=1');
    assert.equal(one.body.data.length, 1);
  });
});

describe('at scale and in secret', () => {
  test('ten concurrent runs all finish with their own events, nothing crossed', async () => {
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runAgent(stack, {
          model: 'm',
          messages: [{ role: 'user', content: `CALL dyno_run_command {"n":${i}}` }],
          tools: [dynoTool],
        }),
      ),
    );
    const ids = new Set(runs.map((r) => r.headers.get('agent-run-id')));
    assert.equal(ids.size, 10);
    runs.forEach((r, i) => {
      assert.equal(r.messages.length, 3);
      for (const m of r.messages) assert.equal(m.id, r.headers.get('agent-run-id'));
      assert.equal(r.messages[1].choices[0].message.content, `Tool 'dyno_run_command' returned result: step ${i}`);
      assert.equal(r.frames.at(-1)!.event, 'done');
    });
  });

  test('no secret appears in any run history, event, or service log', async () => {
    const ok = await runAgent(stack, threeSteps);
    stack.model.setHandler(() => reply.error(400, { error: { message: 'bad model' } }));
    let failed;
    try {
      failed = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'x' }] });
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
    // Payloads kept out of history (PAYLOAD_STORE_DIR) are searched by test/e2e/long-run.test.ts, whose runs write them.
    const workflowOf = (r: typeof ok) => `agent-run-${r.headers.get('agent-run-id')!.slice('chatcmpl-'.length)}`;
    // These two by id (visibility may lag), plus every run this file made.
    const histories =
      (await historyText(stack.client, workflowOf(ok))) +
      (await historyText(stack.client, workflowOf(failed))) +
      (await allRunHistories(stack.client));
    assert.ok(histories.includes('step 3') && histories.includes('bad model'), 'expected the histories of this file’s runs');
    const events = ok.raw + failed.raw;
    const serverLog = fs.readFileSync(stack.temporalLog, 'utf8');
    assert.match(serverLog, /^\n--- .* server start-dev /, 'expected the log of the Temporal server the stack started');
    for (const secret of stack.secrets) {
      assert.equal(histories.includes(secret), false, 'a secret reached workflow history');
      assert.equal(events.includes(secret), false, 'a secret reached an event');
      assert.equal(stack.worker.output.includes(secret), false, 'a secret reached the worker log');
      assert.equal(stack.api.output.includes(secret), false, 'a secret reached the API log');
      assert.equal(serverLog.includes(secret), false, "a secret reached the Temporal server's log");
    }
  });
});
