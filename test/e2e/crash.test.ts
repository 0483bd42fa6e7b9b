/**
 * Durability you can demonstrate: real processes are killed (SIGKILL) or shut
 * down (SIGTERM) in the middle of a run, and the run still ends with every
 * event exactly once, nothing lost, nothing repeated, and no side-effecting
 * tool run twice. The worker, the API and the Temporal dev server (SQLite
 * file) are separate OS processes of the test stack.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { after, before, beforeEach, describe, test } from 'node:test';
import { reply, scriptedAgent, type ModelHandler } from '../doubles/model-server';
import * as runs from '../support/runs';
import { alive, contents, dynoTool, follow, holdFinalCall, ids, isFinalCall, messageFrames, newTag, stepResult, steps } from '../support/runs';
import { useStack } from '../support/stack';
import { getJson, post } from '../support/sse';
import { sleep, until, within } from '../support/wait';

/** A web page whose first request never answers (the worker dies meanwhile) and whose later ones do. */
const page = { url: '', requests: 0, server: undefined as http.Server | undefined };
before(async () => {
  page.server = http.createServer((_req, res) => {
    if (++page.requests === 1) return;
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body><h1>Back again</h1></body></html>');
  });
  await new Promise<void>((resolve) => page.server!.listen(0, '127.0.0.1', resolve));
  page.url = `http://127.0.0.1:${(page.server.address() as AddressInfo).port}`;
});
after(async () => {
  page.server?.closeAllConnections();
  await new Promise((resolve) => page.server?.close(resolve));
});

const stack = useStack({ persistent: true, workerEnv: { FETCH_ALLOW_HOSTS: '127.0.0.1' } });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 120_000 };

const modelRequestsOf = (tag: string) => runs.modelRequestsOf(stack.model, tag);
const dynoCreatesOf = (runId: string) => runs.dynoCreatesOf(stack.heroku, runId);
const resumeStream = (runId: string, lastEventId: string) => runs.resumeStream(stack, runId, lastEventId);
const workflowOf = (runId: string) => runs.workflowOf(stack.client, runId);
const activityStarts = (runId: string) => runs.activityStarts(stack.client, runId);
const pendingActivityWorkerPid = (runId: string) => runs.pendingActivityWorkerPid(stack.client, runId);

/** The scripted agent, but the first attempt of the model call after the tool results never answers. */
const finalCallHangsOnce: ModelHandler = (req) => (isFinalCall(req) && req.attempt === 1 ? reply.hang() : scriptedAgent(req));

async function statusOf(runId: string) {
  return (await getJson(stack, `/v1/agents/runs/${runId}`)).body;
}

describe('the worker is killed (SIGKILL)', () => {
  test('during a model call: a new worker calls the model again and the open stream gets every event once', TEST_TIMEOUT, async () => {
    const tag = newTag();
    stack.model.setHandler(finalCallHangsOnce);
    const stream = follow(await post(stack, steps(tag, 1)));

    await until(() => modelRequestsOf(tag).length === 2 && messageFrames(stream.frames).length === 2, 'the second model call');
    await stack.worker.kill('SIGKILL');
    await stack.worker.start();

    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    assert.deepEqual(contents(stream.frames), [null, stepResult(1), `Done: ${stepResult(1)}`]);

    // The first call once, the interrupted one twice with the same request; nothing else.
    const requests = modelRequestsOf(tag);
    assert.equal(requests.length, 3);
    assert.deepEqual(requests[2]!.body, requests[1]!.body);
    assert.equal(requests[2]!.attempt, 2);
    assert.equal(dynoCreatesOf(stream.runId).length, 1);
    const status = await statusOf(stream.runId);
    assert.equal(status.status, 'completed');
    assert.equal(status.model_calls, 2);
    assert.equal(status.events, 3);
  });

  test('during dyno_run_command: the command is not run again and the model is told the outcome is unknown', TEST_TIMEOUT, async () => {
    await runs.sideEffectNotRepeatedAfterWorkerKill(stack, {
      via: stack,
      killWorker: async () => {
        await stack.worker.kill('SIGKILL');
        await stack.worker.start();
      },
    });
  });

  test('during a read-only tool (html_to_markdown): a new worker runs it again and the model gets its result', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const requestsBefore = page.requests;
    const stream = follow(
      await post(stack, {
        model: 'm',
        messages: [{ role: 'user', content: `${tag}\nCALL html_to_markdown {"url":"${page.url}/page"}` }],
        tools: [{ type: 'heroku_tool', name: 'html_to_markdown', runtime_params: { ttl_seconds: 60 } }],
      }),
    );
    await until(() => page.requests === requestsBefore + 1, 'the fetch to reach the page');
    const deadPid = stack.worker.child!.pid;
    await stack.worker.kill('SIGKILL');
    await stack.worker.start();

    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    const result = `Tool 'html_to_markdown' returned result: ${JSON.stringify({ content: [{ type: 'text', text: '# Back again' }], isError: false })}`;
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    assert.deepEqual(contents(stream.frames), [null, result, `Done: ${result}`]);
    assert.equal(page.requests, requestsBefore + 2, 'fetched again');
    // Model call, tool (its second attempt, on the new worker), model call.
    const starts = await activityStarts(stream.runId);
    assert.deepEqual(
      starts.map((s) => s.attempt),
      [1, 2, 1],
    );
    assert.notEqual(starts[1]!.pid, deadPid);
  });

  test(
    'during an idempotent tool (code_exec_python in the sandbox): a new worker runs it again and the model gets its result',
    TEST_TIMEOUT,
    async () => {
      const tag = newTag();
      const marker = `crash-marker-${randomBytes(6).toString('hex')}`;
      const code = `import subprocess\nsubprocess.run(["sh", "-c", "sleep 3; true ${marker}"])\nprint("ran to the end")`;
      const stream = follow(
        await post(stack, {
          model: 'm',
          messages: [{ role: 'user', content: `${tag}\nCALL code_exec_python ${JSON.stringify({ code })}` }],
          tools: [{ type: 'heroku_tool', name: 'code_exec_python', runtime_params: { ttl_seconds: 60 } }],
        }),
      );
      const running = () => spawnSync('pgrep', ['-f', marker]).status === 0;
      await until(running, 'the code to run');
      const deadPid = stack.worker.child!.pid;
      await stack.worker.kill('SIGKILL');
      await stack.worker.start();

      const { error } = await within(stream.ended, 'the stream to end', 60_000);
      assert.equal(error, undefined);
      const execution = JSON.stringify({ returncode: 0, stdout: 'ran to the end\n', stderr: '' });
      const result = `Tool 'code_exec_python' returned result: ${JSON.stringify({ content: [{ type: 'text', text: execution }], isError: false })}`;
      assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
      assert.deepEqual(contents(stream.frames), [null, result, `Done: ${result}`]);
      const starts = await activityStarts(stream.runId);
      assert.deepEqual(
        starts.map((s) => s.attempt),
        [1, 2, 1],
      );
      assert.notEqual(starts[1]!.pid, deadPid);
    },
  );
});

describe('the API is killed (SIGKILL) while streaming', () => {
  test('the client resumes with Last-Event-ID against the restarted API: every event once, the run undisturbed', TEST_TIMEOUT, async () => {
    await runs.streamSurvivesApiKill(stack, { via: stack, killed: stack.api, resumeVia: stack, whileDown: () => stack.api.start() });
  });
});

describe('the Temporal server is killed (SIGKILL) and restarted on its SQLite file', () => {
  test('the run completes; the worker and the API reconnect by themselves; the open stream misses nothing', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const finalCall = holdFinalCall();
    stack.model.setHandler(finalCall.handler);
    const [workerPid, apiPid] = [stack.worker.child!.pid, stack.api.child!.pid];
    const stream = follow(await post(stack, steps(tag, 1)));

    await until(() => modelRequestsOf(tag).length === 2 && messageFrames(stream.frames).length === 2, 'the second model call');
    // Down for 5 s, as after a real crash; the model call in flight answers meanwhile. That is less than
    // the 15 s heartbeat timeout, so the worker delivers its result once the server is back: no second call.
    await stack.restartTemporal(async () => {
      await sleep(1_000);
      finalCall.release();
      await sleep(4_000);
    });

    const { error } = await within(stream.ended, 'the stream to end', 90_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    assert.deepEqual(contents(stream.frames), [null, stepResult(1), `Done: ${stepResult(1)}`]);
    assert.equal(modelRequestsOf(tag).length, 2, 'the model call in flight was not repeated');
    assert.equal(dynoCreatesOf(stream.runId).length, 1);
    assert.equal((await statusOf(stream.runId)).status, 'completed');

    // The same processes, still serving: a new run goes through end to end.
    assert.deepEqual([stack.worker.child!.pid, stack.api.child!.pid], [workerPid, apiPid]);
    assert.ok(alive(stack.worker) && alive(stack.api));
    stack.model.setHandler(scriptedAgent);
    const next = follow(await post(stack, steps(newTag(), 1)));
    await within(next.ended, 'a run after the restart', 60_000);
    assert.deepEqual(ids(next.frames), ['0', '1', '2', 'done']);
  });
});

describe('two workers share the task queue', () => {
  test('the one running the model call is killed; the other takes over and finishes the run', TEST_TIMEOUT, async () => {
    const second = await stack.addWorker();
    try {
      const tag = newTag();
      stack.model.setHandler(finalCallHangsOnce);
      const stream = follow(await post(stack, steps(tag, 1)));

      await until(() => modelRequestsOf(tag).length === 2, 'the second model call');
      let busyPid: number | undefined;
      await until(async () => (busyPid = await pendingActivityWorkerPid(stream.runId)) !== undefined, 'the activity’s worker');
      const [busy, other] = busyPid === second.child!.pid ? [second, stack.worker] : [stack.worker, second];
      assert.equal(busy.child!.pid, busyPid);
      await busy.kill('SIGKILL');

      const { error } = await within(stream.ended, 'the stream to end', 60_000);
      assert.equal(error, undefined);
      assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
      assert.deepEqual(contents(stream.frames), [null, stepResult(1), `Done: ${stepResult(1)}`]);
      assert.equal(modelRequestsOf(tag).length, 3);
      assert.equal(dynoCreatesOf(stream.runId).length, 1);
      // The retry of the interrupted call ran on the surviving worker.
      const starts = await activityStarts(stream.runId);
      assert.deepEqual(starts.at(-1), { attempt: 2, pid: other.child!.pid });
      assert.ok(alive(other));
    } finally {
      await second.kill('SIGKILL');
      if (!alive(stack.worker)) await stack.worker.start();
    }
  });
});

describe('graceful shutdown (SIGTERM)', () => {
  test('a worker lets a running dyno command finish, reports its real output, and exits', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const stream = follow(await post(stack, steps(tag, 1, dynoTool('sleep 3; echo "finished after 3s"'))));
    await until(() => dynoCreatesOf(stream.runId).length === 1 && stack.heroku.running() === 1, 'the dyno to run');
    const pid = stack.worker.child!.pid!;

    const t0 = Date.now();
    const exit = await within(stack.worker.kill('SIGTERM'), 'the worker to exit', 40_000);
    const ms = Date.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(ms >= 2_000, `the worker exited after ${ms} ms, before the command could finish`);
    assert.ok(ms < 30_000, `the worker took ${ms} ms to exit`);
    // The activity was completed by the worker that was shutting down.
    const history = await workflowOf(stream.runId).fetchHistory();
    const completed = history.events!.filter((e) => e.activityTaskCompletedEventAttributes);
    assert.equal(completed.at(-1)!.activityTaskCompletedEventAttributes!.identity, `${pid}@${hostname()}`);

    await stack.worker.start();
    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    const output = "Tool 'dyno_run_command' returned result: finished after 3s";
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    assert.deepEqual(contents(stream.frames), [null, output, `Done: ${output}`]);
    assert.equal(dynoCreatesOf(stream.runId).length, 1);
    assert.equal(modelRequestsOf(tag).length, 2);
  });

  test('the API ends open streams cleanly with a last comment and exits; the client resumes and gets the rest', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const finalCall = holdFinalCall();
    stack.model.setHandler(finalCall.handler);
    const first = follow(await post(stack, steps(tag, 3)));
    await until(() => messageFrames(first.frames).length === 4 && modelRequestsOf(tag).length === 2, 'four events and the last model call');

    const exit = await within(stack.api.kill('SIGTERM'), 'the API to exit', 15_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    const { result, error } = await first.ended;
    assert.equal(error, undefined, 'the stream ended cleanly, not cut');
    assert.deepEqual(ids(first.frames), ['0', '1', '2', '3']);
    assert.ok(result!.raw.endsWith('\n\n:keep-alive\n\n'), `the stream ended with: ${JSON.stringify(result!.raw.slice(-60))}`);
    assert.equal(result!.raw.includes('event:done'), false, 'no done: the run goes on');

    await stack.api.start();
    const rest = follow(await resumeStream(first.runId, '3'));
    finalCall.release();
    await within(rest.ended, 'the resumed stream to end', 60_000);
    assert.deepEqual(ids(rest.frames), ['4', 'done']);
    assert.equal(contents(rest.frames)[0], `Done: ${[1, 2, 3].map(stepResult).join('\n')}`);
    assert.equal(modelRequestsOf(tag).length, 2);
    assert.equal(dynoCreatesOf(first.runId).length, 3);
    assert.equal((await statusOf(first.runId)).status, 'completed');
  });
});
