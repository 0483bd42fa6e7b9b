/**
 * What happens when things go wrong upstream, when a run is cancelled, and
 * when a client retries its POST with an Idempotency-Key.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { reply, scriptedAgent, type ModelHandler } from '../doubles/model-server';
import { OTHER_API_KEY, useStack } from '../support/stack';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { until, within } from '../support/wait';

const stack = useStack();
beforeEach(() => stack.model.setHandler(scriptedAgent));

/** A handler that fails the first `n` attempts of each distinct request with `failure`. */
const failFirst =
  (n: number, failure: ReturnType<typeof reply.error>): ModelHandler =>
  (req) =>
    req.attempt <= n ? failure : scriptedAgent(req);

const ask = (content: string) => ({ model: 'm', messages: [{ role: 'user', content }] });

async function statusOf(runId: string) {
  return (await getJson(stack, `/v1/agents/runs/${runId}`)).body;
}

const workflowOf = (runId: string) => stack.client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`);

/** The attempt each activity completed in, and the failure of the attempt before it (what the Temporal UI shows). */
async function attemptsOf(runId: string): Promise<number[]> {
  return (await startedActivities(runId)).map((a) => a.attempt!);
}
async function startedActivities(runId: string) {
  const history = await workflowOf(runId).fetchHistory();
  return history.events!.flatMap((e) => e.activityTaskStartedEventAttributes ?? []);
}

const modelRequestsFor = (content: string) => stack.model.requests.filter((r) => r.body.messages[0].content === content);

describe('upstream model failures', () => {
  test('5xx answers are retried by Temporal, each retry an attempt, and the run completes', async () => {
    stack.model.setHandler(failFirst(2, reply.error(503)));
    const res = await runAgent(stack, ask('flaky'));
    assert.equal(res.messages.length, 1);
    assert.equal(res.messages[0].choices[0].message.content, 'Echo: flaky');
    assert.equal(
      res.frames.some((f) => f.event === 'error'),
      false,
    );
    const runId = res.headers.get('agent-run-id')!;
    assert.deepEqual(await attemptsOf(runId), [3]);
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'flaky').length, 3);
  });

  test('429 with Retry-After waits as long as the upstream asks', async () => {
    stack.model.setHandler(failFirst(1, reply.error(429, undefined, { 'retry-after': '3' })));
    const res = await runAgent(stack, ask('rate limited'));
    assert.equal(res.messages[0].choices[0].message.content, 'Echo: rate limited');
    const times = stack.model.requests.filter((r) => r.body.messages[0].content === 'rate limited').map((r) => r.time);
    assert.equal(times.length, 2);
    assert.ok(times[1]! - times[0]! >= 2_900, `retried after ${times[1]! - times[0]!} ms`);
  });

  test('a 4xx other than 408/409/429 is final: error event, done, run failed', async () => {
    stack.model.setHandler(() => reply.error(400, { error: { message: 'model does not exist', type: 'invalid_request_error' } }));
    const res = await runAgent(stack, ask('bad'));
    assert.equal(res.status, 200);
    assert.equal(res.messages.length, 0);
    assert.deepEqual(
      res.frames.map((f) => f.event),
      ['error', 'done'],
    );
    assert.deepEqual(JSON.parse(res.frames[0]!.data), {
      error: {
        code: 400,
        type: 'upstream_error',
        message: `the upstream model API (${stack.model.url}/v1/chat/completions) answered 400: model does not exist`,
      },
    });
    const runId = res.headers.get('agent-run-id')!;
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'bad').length, 1);
    const status = await statusOf(runId);
    assert.equal(status.status, 'failed');
    assert.equal(status.error.type, 'upstream_error');
  });

  test('an upstream that keeps failing ends the run with an error that says why', async () => {
    stack.model.setHandler(() => reply.raw(200, 'this is not json', { 'content-type': 'application/json' }));
    const res = await runAgent(stack, ask('garbage'));
    assert.deepEqual(
      res.frames.map((f) => f.event),
      ['error', 'done'],
    );
    const { error } = JSON.parse(res.frames[0]!.data);
    assert.equal(error.type, 'upstream_error');
    assert.match(error.message, /upstream model API/);
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'garbage').length, 5);
  });

  test('an answer without choices is a clear error, shown on the attempt, and retried', async () => {
    stack.model.setHandler(({ attempt, body }) =>
      attempt === 1
        ? reply.raw(200, JSON.stringify({ id: 'x', object: 'chat.completion', choices: [] }), { 'content-type': 'application/json' })
        : scriptedAgent({ attempt, body, headers: {} }),
    );
    const res = await runAgent(stack, ask('empty'));
    assert.equal(res.messages[0].choices[0].message.content, 'Echo: empty');
    const [started] = await startedActivities(res.headers.get('agent-run-id')!);
    assert.equal(started!.attempt, 2);
    assert.equal(started!.lastFailure?.message, `the upstream model API (${stack.model.url}/v1/chat/completions) answered without any choices`);
  });

  for (const [name, failure, what] of [
    ['408 (request timeout)', reply.error(408), 'answered 408: Simulated error 408'],
    ['409 (conflict)', reply.error(409), 'answered 409: Simulated error 409'],
    ['a dropped connection', reply.drop(), 'could not be reached or gave an unreadable answer: Connection error.'],
  ] as const) {
    test(`${name} is retried, and the run completes`, async () => {
      const content = `retry after ${name}`;
      stack.model.setHandler(failFirst(1, failure));
      const res = await runAgent(stack, ask(content));
      assert.equal(res.messages[0].choices[0].message.content, `Echo: ${content}`);
      assert.equal(modelRequestsFor(content).length, 2);
      const [started] = await startedActivities(res.headers.get('agent-run-id')!);
      assert.equal(started!.attempt, 2);
      assert.equal(started!.lastFailure?.message, `the upstream model API (${stack.model.url}/v1/chat/completions) ${what}`);
    });
  }

  test('a Retry-After longer than 2 minutes is capped at 2 minutes', async () => {
    stack.model.setHandler(() => reply.error(429, undefined, { 'retry-after': '86400' }));
    const res = await post(stack, ask('come back tomorrow'));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    let next: { failedAt: number; nextAt: number } | undefined;
    await until(async () => {
      const pending = (await workflowOf(runId).describe()).raw.pendingActivities?.[0];
      const failedAt = Number(pending?.lastAttemptCompleteTime?.seconds);
      const nextAt = Number(pending?.nextAttemptScheduleTime?.seconds);
      if (pending?.attempt === 2 && failedAt && nextAt) next = { failedAt, nextAt };
      return next !== undefined;
    }, 'the retry of the rate-limited call to be scheduled');
    const delay = next!.nextAt - next!.failedAt;
    assert.ok(delay >= 115 && delay <= 125, `the next attempt is ${delay} s after the failed one, not 120 s`);
    assert.equal(modelRequestsFor('come back tomorrow').length, 1);
    await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    await within(reading, 'the cancelled stream to end', 30_000);
  });
});

describe('cancel', () => {
  test('stops a run in a model call within seconds: the upstream request is aborted, the stream ends with a cancelled error; twice is harmless', async () => {
    stack.model.setHandler(() => reply.hang());
    const res = await post(stack, ask('hang'));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    // Cancelled only once the model call is in flight, however slow the machine.
    await until(() => modelRequestsFor('hang').length === 1, 'the model call to reach the upstream');
    const [request] = modelRequestsFor('hang');
    const started = Date.now();
    const cancel = await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    const stream = await within(reading, 'the stream to end after the cancel', 30_000);
    assert.ok(Date.now() - started < 20_000, `stream ended ${Date.now() - started} ms after cancel`);
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['error', 'done'],
    );
    assert.deepEqual(JSON.parse(stream.frames[0]!.data), { error: { code: 499, type: 'cancelled', message: 'the run was cancelled' } });
    // The worker gave up the HTTP request itself, not just the run.
    await until(() => request!.abandonedAt !== undefined, 'the upstream request to be aborted', 20_000);
    assert.ok(request!.abandonedAt! - started < 20_000, `aborted ${request!.abandonedAt! - started} ms after the cancel`);
    assert.equal(modelRequestsFor('hang').length, 1, 'the call was not made again');
    assert.equal((await statusOf(runId)).status, 'cancelled');
    const again = await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    assert.equal(again.status, 202);
    assert.equal(again.body.status, 'cancelled');
    assert.equal((await getJson(stack, `/v1/agents/runs/chatcmpl-000000000000000000000000/cancel`, { method: 'POST' })).status, 404);
  });

  test('stops a running dyno: the worker asks the platform to stop it', async () => {
    const res = await post(stack, {
      model: 'm',
      messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }],
      tools: [
        {
          type: 'heroku_tool',
          name: 'dyno_run_command',
          runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo begun; sleep 100', description: 'slow' } },
        },
      ],
    });
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    const dyno = () => stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID?.startsWith(`${runId}:`));
    await until(() => dyno()?.state === 'up', 'the dyno to run');
    await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    const stream = await within(reading, 'the stream to end after the cancel', 30_000);
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    // A stop call for this dyno, made by the worker (the platform's own time_to_live is 120 s away).
    await until(() => stack.heroku.stops.some((s) => s.dyno === dyno()!.name), 'a stop call for the dyno', 20_000);
    await until(() => dyno()!.state === 'down', 'the dyno to be down', 20_000);
  });
});

describe('Idempotency-Key', () => {
  test('the same key and body attach to the same run, from offset 0, even after it finished', async () => {
    const key = `key-${Date.now()}`;
    const body = ask('once only');
    const first = await runAgent(stack, body, { 'Idempotency-Key': key });
    const second = await runAgent(stack, body, { 'Idempotency-Key': key });
    assert.equal(second.headers.get('agent-run-id'), first.headers.get('agent-run-id'));
    assert.equal(second.raw, first.raw);
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'once only').length, 1);
  });

  test('concurrent retries with one key share one run', async () => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 500 }) as never);
    const key = `key-concurrent-${Date.now()}`;
    const runs = await Promise.all([1, 2, 3].map(() => runAgent(stack, ask('together'), { 'Idempotency-Key': key })));
    assert.equal(new Set(runs.map((r) => r.headers.get('agent-run-id'))).size, 1);
    for (const r of runs) assert.equal(r.messages.length, 1);
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'together').length, 1);
  });

  test('the same key with a different body is a 409', async () => {
    const key = `key-conflict-${Date.now()}`;
    await runAgent(stack, ask('first body'), { 'Idempotency-Key': key });
    const res = await post(stack, ask('second body'), { 'Idempotency-Key': key });
    assert.equal(res.status, 409);
    assert.deepEqual(await res.json(), {
      error: { code: 409, type: 'idempotency_error', message: 'Idempotency-Key was already used with a different request body' },
    });
  });

  test('a key is scoped to the API key that sent it: another caller with the same key gets a run of its own', async () => {
    const key = `key-shared-${Date.now()}`;
    const other = { ...stack, apiKey: OTHER_API_KEY };
    const mine = await runAgent(stack, ask('scoped once'), { 'Idempotency-Key': key });
    const theirs = await runAgent(other, ask('scoped once'), { 'Idempotency-Key': key });
    // A different body under the same key is no conflict across callers either.
    const theirsToo = await post(other, ask('scoped, another body'), { 'Idempotency-Key': `${key}-2` });
    const mineToo = await post(stack, ask('scoped, yet another body'), { 'Idempotency-Key': `${key}-2` });
    assert.deepEqual([theirsToo.status, mineToo.status], [200, 200]);
    await Promise.all([theirsToo.text(), mineToo.text()]);

    assert.notEqual(theirs.headers.get('agent-run-id'), mine.headers.get('agent-run-id'));
    assert.equal(modelRequestsFor('scoped once').length, 2, 'each caller got a run of its own');
    // Each caller re-attaches to its own run.
    const mineAgain = await runAgent(stack, ask('scoped once'), { 'Idempotency-Key': key });
    const theirsAgain = await runAgent(other, ask('scoped once'), { 'Idempotency-Key': key });
    assert.equal(mineAgain.headers.get('agent-run-id'), mine.headers.get('agent-run-id'));
    assert.equal(theirsAgain.headers.get('agent-run-id'), theirs.headers.get('agent-run-id'));
    assert.equal(modelRequestsFor('scoped once').length, 2);
  });
});
