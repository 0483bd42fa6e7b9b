/**
 * The service as it is deployed: a production Temporal server on PostgreSQL,
 * set up and configured by the files docker-compose.yml uses
 * (deploy/temporal/*; test/support/temporal-cluster.ts), with two API and two
 * worker processes. Each process is killed (SIGKILL) in the middle of a run,
 * and the run still ends with every event exactly once, on the processes left.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { AGENT_MODEL, AGENT_TOTAL_TOKENS } from '../../contract/search-attributes';
import { scriptedAgent } from '../doubles/model-server';
import * as runs from '../support/runs';
import { alive, contents, follow, holdFinalCall, ids, messageFrames, newTag, stepResult, steps } from '../support/runs';
import { freePort } from '../../dev/dev-server';
import { API_READY, KEY_ID_SECRET, ServiceProcess, useStack } from '../support/stack';
import { post, type Requester } from '../support/sse';
import { sleep, until, within } from '../support/wait';

const stack = useStack({ cluster: true, workers: 2, apis: 2 });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 180_000 };

/** The two APIs, as clients address them. */
const api = (i: 0 | 1): Requester => ({ apiUrl: stack.apiUrls[i]!, apiKey: stack.apiKey });
const modelRequestsOf = (tag: string) => runs.modelRequestsOf(stack.model, tag);
const dynoCreatesOf = (runId: string) => runs.dynoCreatesOf(stack.heroku, runId);

/** Starts the processes a test killed again, so that every test begins with two of each. */
async function restartKilled() {
  await Promise.all([...stack.workers, ...stack.apis].filter((p) => !alive(p)).map((p) => p.start()));
}

describe('a worker is killed (SIGKILL) while it runs a side-effecting tool', () => {
  test('the command is not run again, and the other worker finishes the run', TEST_TIMEOUT, async () => {
    try {
      let survivor: ServiceProcess | undefined;
      const runId = await runs.sideEffectNotRepeatedAfterWorkerKill(stack, {
        via: api(0),
        killWorker: async (id) => {
          let busyPid: number | undefined;
          await until(async () => (busyPid = await runs.pendingActivityWorkerPid(stack.client, id)) !== undefined, 'the tool’s worker');
          const busy = stack.workers.find((w) => w.child?.pid === busyPid)!;
          survivor = stack.workers.find((w) => w !== busy)!;
          await busy.kill('SIGKILL');
        },
      });
      // The model call after the tool ran on the surviving worker.
      const starts = await runs.activityStarts(stack.client, runId);
      assert.deepEqual(starts.at(-1), { attempt: 1, pid: survivor!.child!.pid });
    } finally {
      await restartKilled();
    }
  });
});

describe('an API is killed (SIGKILL) while streaming', () => {
  test('the client resumes on the other API with Last-Event-ID: every event once, the run undisturbed', TEST_TIMEOUT, async () => {
    try {
      await runs.streamSurvivesApiKill(stack, { via: api(0), killed: stack.apis[0]!, resumeVia: api(1) });
    } finally {
      await restartKilled();
    }
  });
});

describe('the Temporal server is killed (SIGKILL) and restarted on its PostgreSQL data', () => {
  test('the run completes, the open stream misses nothing, a stream on the other API resumes, and new runs go through', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const finalCall = holdFinalCall();
    stack.model.setHandler(finalCall.handler);
    const pids = [...stack.workers, ...stack.apis].map((p) => p.child!.pid);
    const stream = follow(await post(api(0), steps(tag, 1)));
    await until(() => modelRequestsOf(tag).length === 2 && messageFrames(stream.frames).length === 2, 'the second model call');
    // A second client follows the same run on the other API from its first event.
    const watcher = follow(await runs.resumeStream(api(1), stream.runId, '0'));

    // Down for 5 s; the model call in flight answers meanwhile, within the 15 s heartbeat
    // timeout, so the worker delivers its result once the server is back: no second call.
    await stack.restartTemporal(async () => {
      await sleep(1_000);
      finalCall.release();
      await sleep(4_000);
    });

    const [main, second] = await within(Promise.all([stream.ended, watcher.ended]), 'both streams to end', 120_000);
    assert.equal(main.error, undefined);
    assert.equal(second.error, undefined);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'done']);
    assert.deepEqual(contents(stream.frames), [null, stepResult(1), `Done: ${stepResult(1)}`]);
    assert.deepEqual(ids(watcher.frames), ['1', '2', 'done']);
    assert.deepEqual(contents(watcher.frames), contents(stream.frames).slice(1));
    assert.equal(modelRequestsOf(tag).length, 2, 'the model call in flight was not repeated');
    assert.equal(dynoCreatesOf(stream.runId).length, 1);

    // The same processes, still serving: a new run through each API goes end to end.
    assert.deepEqual(
      [...stack.workers, ...stack.apis].map((p) => p.child!.pid),
      pids,
    );
    stack.model.setHandler(scriptedAgent);
    for (const i of [0, 1] as const) {
      const next = follow(await post(api(i), steps(newTag(), 1)));
      await within(next.ended, `a run through API ${i + 1} after the restart`, 60_000);
      assert.deepEqual(ids(next.frames), ['0', '1', '2', 'done']);
    }
  });
});

describe('an API on a namespace that lacks the search attributes', () => {
  test('registers them on its first run and waits until they are usable: the run starts and carries them', TEST_TIMEOUT, async () => {
    const cluster = stack.temporal.cluster!;
    const namespace = `fresh-${randomBytes(4).toString('hex')}`;
    await cluster.cli(['operator', 'namespace', 'create', '--namespace', namespace]);
    const serves = () =>
      cluster.cli(['workflow', 'count', '--namespace', namespace]).then(
        () => true,
        () => false,
      );
    await until(serves, `namespace ${namespace} to serve`, 60_000);
    const port = await freePort();
    const env = () => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: stack.temporal.address,
      TEMPORAL_NAMESPACE: namespace,
      PORT: String(port),
      AGENTS_API_KEYS: stack.apiKey,
      AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
    });
    const freshApi = new ServiceProcess('api on a fresh namespace', 'api/main.ts', env, API_READY);
    await freshApi.start();
    try {
      // Nothing polls this namespace's task queue: the run starts and waits, which is all this test needs.
      const res = await post(
        { apiUrl: `http://127.0.0.1:${port}`, apiKey: stack.apiKey },
        { model: 'fresh-model', messages: [{ role: 'user', content: 'hi' }] },
      );
      const refusal = res.headers.get('content-type')?.startsWith('application/json') ? await res.text() : '';
      assert.equal(res.status, 200, `the first run was refused: ${refusal}`);
      await res.body?.cancel();
      const runId = res.headers.get('agent-run-id')!;
      const handle = runs.workflowOf(new Client({ connection: stack.client.connection, namespace }), runId);
      const { typedSearchAttributes } = await handle.describe();
      assert.equal(typedSearchAttributes.get(AGENT_MODEL), 'fresh-model');
      assert.equal(typedSearchAttributes.get(AGENT_TOTAL_TOKENS), 0);
      await handle.terminate('test done');
    } finally {
      await freshApi.kill('SIGTERM');
    }
  });
});
