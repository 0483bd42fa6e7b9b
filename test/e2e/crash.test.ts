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
import { useStack, type ServiceProcess } from '../support/stack';
import { getJson, post, readStream, type Frame, type StreamResult } from '../support/sse';
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

/** A stream read in the background: its frames as they arrive, and how it ended (cleanly, or cut with an error). */
function follow(res: Response) {
  const frames: Frame[] = [];
  const ended: Promise<{ result?: StreamResult; error?: unknown }> = readStream(res, { onFrame: (f) => frames.push(f) }).then(
    (result) => ({ result }),
    (error) => ({ error }),
  );
  return { runId: res.headers.get('agent-run-id')!, frames, ended };
}

const messageFrames = (frames: Frame[]) => frames.filter((f) => f.event === 'message');
const ids = (frames: Frame[]) => frames.map((f) => f.id ?? f.event);
const contents = (frames: Frame[]) => messageFrames(frames).map((f) => JSON.parse(f.data).choices[0].message.content);

/** A tag in the user message, so a test finds its own requests among the model double's. */
const newTag = () => `crash-${randomBytes(6).toString('hex')}`;
const modelRequestsOf = (tag: string) => stack.model.requests.filter((r) => String(r.body.messages[0]?.content).includes(tag));
/** Dyno creates of one run: TOOL_CALL_ID is `<run id>:<position>`. */
const dynoCreatesOf = (runId: string) => stack.heroku.creates.filter((c) => String(c.body?.env?.TOOL_CALL_ID).startsWith(`${runId}:`));

const dynoTool = (cmd: string) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'my-app',
    ttl_seconds: 120,
    max_calls: 5,
    tool_params: { cmd, description: 'runs a step', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
  },
});
const STEP = dynoTool('echo "step $TOOL_ARG_N"');

/** A run of `calls` dyno steps asked for in one model message: 1 + calls + 1 events. */
const steps = (tag: string, calls: number, tool = STEP) => ({
  model: 'm',
  messages: [{ role: 'user', content: [tag, ...Array.from({ length: calls }, (_, i) => `CALL dyno_run_command {"n":${i + 1}}`)].join('\n') }],
  tools: [tool],
});
const stepResult = (n: number) => `Tool 'dyno_run_command' returned result: step ${n}`;

const isFinalCall = (req: Parameters<ModelHandler>[0]) => req.body.messages.at(-1)?.role === 'tool';

/** The scripted agent, but the model call after the tool results is held until `release()`: it is in flight for as long as a test needs. */
function holdFinalCall() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const handler: ModelHandler = async (req) => {
    if (isFinalCall(req)) await released;
    return scriptedAgent(req);
  };
  return { handler, release };
}

/** The scripted agent, but the first attempt of the model call after the tool results never answers. */
const finalCallHangsOnce: ModelHandler = (req) => (isFinalCall(req) && req.attempt === 1 ? reply.hang() : scriptedAgent(req));

/** GET /v1/agents/runs/{id}/stream with Last-Event-ID: the response, as soon as its headers arrive. */
const resumeStream = (runId: string, lastEventId: string) =>
  fetch(`${stack.apiUrl}/v1/agents/runs/${runId}/stream`, {
    headers: { Authorization: `Bearer ${stack.apiKey}`, 'Last-Event-ID': lastEventId },
  });

async function statusOf(runId: string) {
  return (await getJson(stack, `/v1/agents/runs/${runId}`)).body;
}

const workflowOf = (runId: string) => stack.client.workflow.getHandle(`agent-run-${runId.slice('chatcmpl-'.length)}`);

/** The worker identity (the SDK's default, `<pid>@<host>`) of each started attempt of the run's activities. */
async function activityStarts(runId: string): Promise<Array<{ attempt: number; pid: number }>> {
  const history = await workflowOf(runId).fetchHistory();
  return history
    .events!.filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => ({
      attempt: e.activityTaskStartedEventAttributes!.attempt!,
      pid: Number(e.activityTaskStartedEventAttributes!.identity!.split('@')[0]),
    }));
}

/** The one activity the run is waiting for, with the pid of the worker running it. */
async function pendingActivityWorkerPid(runId: string): Promise<number | undefined> {
  const { raw } = await workflowOf(runId).describe();
  const identity = raw.pendingActivities?.[0]?.lastWorkerIdentity;
  return identity ? Number(identity.split('@')[0]) : undefined;
}

const alive = (p: ServiceProcess) => p.child !== undefined && p.child.exitCode === null && p.child.signalCode === null;

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
    const tag = newTag();
    const stream = follow(await post(stack, steps(tag, 1, dynoTool('sleep 30; echo slept'))));

    await until(() => dynoCreatesOf(stream.runId).length === 1 && stack.heroku.running() === 1, 'the dyno to run');
    await stack.worker.kill('SIGKILL');
    await stack.worker.start();

    // The heartbeat timeout (15 s) tells Temporal the worker is gone.
    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    const unknown =
      "Tool 'dyno_run_command' returned result: Error: the outcome of this 'dyno_run_command' call is unknown " +
      '(the worker running it stopped responding); it was not retried because it may have side effects.';
    assert.deepEqual(contents(stream.frames), [null, unknown, `Done: ${unknown}`]);

    assert.equal(dynoCreatesOf(stream.runId).length, 1, 'the side-effecting tool ran once');
    assert.equal(modelRequestsOf(tag).length, 2);
    assert.equal(modelRequestsOf(tag)[1]!.body.messages.at(-1).content, unknown);
    // The dyno did not outlive its worker: it was attached, so the platform ended it when the worker's connection
    // dropped (and its time_to_live bounds it anyway). That is Heroku's doing; the worker's part is asking for both.
    const [create] = dynoCreatesOf(stream.runId);
    assert.deepEqual([create!.body.attach, create!.body.time_to_live], [true, 120]);
    assert.equal(stack.heroku.dynos().find((d) => d.env.TOOL_CALL_ID === create!.body.env.TOOL_CALL_ID)?.endedBy, 'hangup');
    assert.equal((await statusOf(stream.runId)).status, 'completed');
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
    const tag = newTag();
    const finalCall = holdFinalCall();
    stack.model.setHandler(finalCall.handler);
    const first = follow(await post(stack, steps(tag, 3)));

    await until(() => messageFrames(first.frames).length === 4 && modelRequestsOf(tag).length === 2, 'four events and the last model call');
    await stack.api.kill('SIGKILL');
    const cut = await first.ended;
    assert.ok(cut.error, 'the stream was cut');
    assert.deepEqual(ids(first.frames), ['0', '1', '2', '3']);
    await stack.api.start();

    // Resumed while the run is still going: the rest arrives live.
    const rest = follow(await resumeStream(first.runId, '3'));
    finalCall.release();
    const { error } = await within(rest.ended, 'the resumed stream to end', 60_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(rest.frames), ['4', 'done']);
    assert.deepEqual(
      [...contents(first.frames), ...contents(rest.frames)],
      [null, stepResult(1), stepResult(2), stepResult(3), `Done: ${[1, 2, 3].map(stepResult).join('\n')}`],
    );
    assert.equal(modelRequestsOf(tag).length, 2);
    assert.equal(dynoCreatesOf(first.runId).length, 3);
    const status = await statusOf(first.runId);
    assert.equal(status.status, 'completed');
    assert.equal(status.events, 5);
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
