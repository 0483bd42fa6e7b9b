/**
 * The agent loop alone: the real workflow code on a real Temporal dev server,
 * with stub activities instead of the model and the tools (no API, no
 * doubles), so each rule of the loop is checked in a second or two: max_calls,
 * unknown tools, the run's model-call limit and how failures become the
 * stream's `event:error`.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { newRunId, workflowIdFor } from '../../common/run-ids';
import {
  AGENT_RUN_WORKFLOW,
  eventsQuery,
  summaryQuery,
  TOOL_TASK_QUEUE,
  waitForEventsUpdate,
  UPSTREAM_ERROR,
  type AgentActivities,
  type AgentRunInput,
  type AgentRunWorkflow,
  type ModelCallInput,
  type ModelCallResult,
  type ResolvedTool,
  type ToolCallInput,
  type ToolCallResult,
} from '../../contract/run-contract';
import { startDevServer, type DevServer } from '../../dev/dev-server';
import { sleep, until, within } from '../support/wait';
import { locateTemporalCli } from '../../dev/temporal-cli';

const TASK_QUEUE = 'workflow-test';

/** What the stub activities do in the current test, and what they were asked. */
let model: (input: ModelCallInput) => ModelCallResult;
let toolCalls: ToolCallInput[] = [];
const ranWith = (input: ToolCallInput): Promise<ToolCallResult> => Promise.resolve({ payload: `ran ${input.tool.name} with ${input.arguments}` });
let runStubTool = ranWith;

const activities: AgentActivities = {
  callModel: (input) => Promise.resolve(model(input)),
  runTool: (input) => {
    toolCalls.push(input);
    return runStubTool(input);
  },
  // No run here names a webhook (test/e2e/background.test.ts delivers real ones).
  deliverWebhook: () => Promise.reject(new Error('no webhook is expected in these tests')),
  keyTokensUsed: () => Promise.reject(new Error('no key budget is expected in these tests')),
};

let server: DevServer;
let connection: Connection;
let client: Client;
let workers: Worker[] = [];
let running: Promise<void>;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  server = await startDevServer({ cliPath: await locateTemporalCli() });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  workers = [
    await Worker.create({ connection: workerConnection, taskQueue: TASK_QUEUE, workflowsPath: require.resolve('../../workflows'), activities }),
    // Tool calls have their own task queue.
    await Worker.create({ connection: workerConnection, taskQueue: TOOL_TASK_QUEUE, activities }),
  ];
  running = Promise.all(workers.map((w) => w.run()))
    .then(() => undefined)
    .finally(() => workerConnection.close());
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
});

after(async () => {
  for (const worker of workers) worker.shutdown();
  await running;
  await connection?.close();
  await server?.stop();
});

beforeEach(() => {
  toolCalls = [];
  runStubTool = ranWith;
});

const tool = (name: string, maxCalls = 3): ResolvedTool => ({
  name,
  type: 'heroku_tool',
  sideEffect: 'read-only',
  function: { name, description: `the ${name} tool`, parameters: { type: 'object' } },
  runtime: { dyno_size: 'standard-1x', ttl_seconds: 5, max_calls: maxCalls, tool_params: {} },
});

const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
/** An answer that calls `name` (once per entry), or finishes with `content`. */
const calls = (...names: string[]): ModelCallResult => callsWith(names.map((name) => [name, '{}']));
/** An answer with one tool call per [name, arguments] entry. */
const callsWith = (entries: [string, string][]): ModelCallResult => ({
  message: {
    role: 'assistant',
    content: null,
    refusal: null,
    tool_calls: entries.map(([name, args], i) => ({ id: `call_${i}`, type: 'function' as const, function: { name, arguments: args } })),
  },
  finish_reason: 'tool_calls',
  usage,
});
const finish = (content: string): ModelCallResult => ({ message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', usage });

/** Starts a run. */
function start(tools: ResolvedTool[], maxModelCalls = 25, parallelToolCalls = 4) {
  const runId = newRunId();
  const input: AgentRunInput = {
    runId,
    model: 'stub-model',
    messages: [{ role: 'user', content: 'go' }],
    tools,
    inference: {},
    maxModelCalls,
    parallelToolCalls,
    searchAttributes: false,
  };
  return client.workflow.start<AgentRunWorkflow>(AGENT_RUN_WORKFLOW, {
    taskQueue: TASK_QUEUE,
    workflowId: workflowIdFor(runId),
    args: [input],
  });
}

/** Starts a run and waits for it to end; returns its events and how it ended. */
async function run(tools: ResolvedTool[], maxModelCalls = 25, parallelToolCalls = 4) {
  const handle = await start(tools, maxModelCalls, parallelToolCalls);
  const outcome = await handle.result().then(
    (terminal) => ({ terminal, failure: undefined }),
    (err: unknown) => ({ terminal: undefined, failure: err }),
  );
  const batch = await handle.query(eventsQuery, { after: -1 });
  const toolContents = batch.events.flatMap((e) => (e.object === 'tool.completion' ? [e.choices[0].message.content] : []));
  return { ...outcome, batch, toolContents, summary: await handle.query(summaryQuery) };
}

describe('the agent loop with stub activities', () => {
  test('max_calls: a call beyond the limit is not run; the model reads why', async () => {
    let turn = 0;
    model = () => (++turn <= 2 ? calls('lookup') : finish('done'));
    const { terminal, toolContents, batch, summary } = await run([tool('lookup', 1)]);
    assert.deepEqual(terminal, { status: 'completed' });
    assert.deepEqual(toolContents, [
      "Tool 'lookup' returned result: ran lookup with {}",
      "Tool 'lookup' returned result: Error: tool 'lookup' has reached its max_calls limit (1) for this run; it was not run.",
    ]);
    assert.equal(toolCalls.length, 1);
    assert.deepEqual(
      batch.events.map((e) => e.object),
      ['chat.completion', 'tool.completion', 'chat.completion', 'tool.completion', 'chat.completion'],
    );
    assert.deepEqual(summary.tool_calls, { lookup: 1 });
    assert.equal(summary.model_calls, 3);
  });

  test('an unknown tool is reported to the model, which goes on; nothing runs', async () => {
    let turn = 0;
    model = () => (++turn === 1 ? calls('nope') : finish('ok'));
    const { terminal, toolContents, summary } = await run([tool('lookup'), tool('fetch')]);
    assert.deepEqual(terminal, { status: 'completed' });
    assert.deepEqual(toolContents, ["Tool 'nope' returned result: Error: unknown tool 'nope'. Available tools: lookup, fetch."]);
    assert.equal(toolCalls.length, 0);
    assert.equal(summary.status, 'completed');
  });

  test('the run limit (MAX_MODEL_CALLS_PER_RUN) ends a loop with run_limit_exceeded and a failed run', async () => {
    model = () => calls('lookup');
    const { failure, batch, summary } = await run([tool('lookup', 50)], 2);
    const error = { code: 429, type: 'run_limit_exceeded', message: 'the run reached its limit of 2 model calls (MAX_MODEL_CALLS_PER_RUN)' };
    assert.deepEqual(batch.terminal, { status: 'failed', error });
    assert.equal(summary.model_calls, 2);
    assert.equal(toolCalls.length, 2);
    // Temporal records the run as failed, with the same error.
    assert.ok(failure instanceof WorkflowFailedError);
    assert.ok(failure.cause instanceof ApplicationFailure);
    assert.equal(failure.cause.type, 'run_limit_exceeded');
  });

  test("an upstream error becomes upstream_error with the upstream's status", async () => {
    model = () => {
      throw ApplicationFailure.create({
        type: UPSTREAM_ERROR,
        message: 'the upstream model API answered 404: no such model',
        nonRetryable: true,
        details: [{ status: 404 }],
      });
    };
    const { batch, failure } = await run([]);
    assert.deepEqual(batch.terminal, {
      status: 'failed',
      error: { code: 404, type: 'upstream_error', message: 'the upstream model API answered 404: no such model' },
    });
    assert.ok(failure instanceof WorkflowFailedError);
  });

  test('any other failure becomes server_error', async () => {
    model = () => {
      throw ApplicationFailure.nonRetryable('the model call broke', 'SomethingElse');
    };
    const { batch } = await run([]);
    assert.deepEqual(batch.terminal, {
      status: 'failed',
      error: { code: 500, type: 'server_error', message: 'the run failed: the model call broke' },
    });
  });
});

describe('tool calls of one reply', () => {
  test('run at once, at most parallelToolCalls; max_calls, events and the conversation follow the order of the calls; a crashing call is reported', async () => {
    let active = 0;
    let peak = 0;
    const finished: number[] = [];
    runStubTool = async (input) => {
      const n = (JSON.parse(input.arguments) as { n: number }).n;
      peak = Math.max(peak, ++active);
      await sleep((6 - n) * 50); // later calls finish first
      active--;
      finished.push(n);
      if (n === 3) throw ApplicationFailure.nonRetryable('the tool process crashed');
      return { payload: `ran ${n}` };
    };
    const conversations: number[] = [];
    model = (input) => {
      conversations.push((input.known ?? 0) + input.messages.length);
      return conversations.length === 1 ? callsWith([1, 2, 3, 4, 5, 6].map((n) => ['lookup', `{"n":${n}}`])) : finish('done');
    };
    const { terminal, toolContents, batch } = await run([tool('lookup', 5)], 25, 4);
    assert.deepEqual(terminal, { status: 'completed' });
    assert.equal(peak, 4, 'four ran at once, never more');
    assert.notDeepEqual(finished, [1, 2, 3, 4, 5], 'they overlapped: later calls finished first');
    assert.deepEqual(toolContents, [
      "Tool 'lookup' returned result: ran 1",
      "Tool 'lookup' returned result: ran 2",
      "Tool 'lookup' returned result: Error: 'lookup' failed: the tool process crashed",
      "Tool 'lookup' returned result: ran 4",
      "Tool 'lookup' returned result: ran 5",
      "Tool 'lookup' returned result: Error: tool 'lookup' has reached its max_calls limit (5) for this run; it was not run.",
    ]);
    assert.deepEqual(
      batch.events.filter((e) => e.object === 'tool.completion').map((e) => e.choices[0].message.tool_call_id),
      ['call_0', 'call_1', 'call_2', 'call_3', 'call_4', 'call_5'],
    );
    assert.deepEqual(
      toolCalls.map((c) => c.callKey.split(':')[1]).sort(),
      ['0', '1', '2', '3', '4'],
      'positions in call order; the refused call ran nowhere',
    );
    assert.deepEqual(conversations, [1, 8], 'the second model call reads the reply and its six tool results');
  });

  test("current details name the tool, the call's position in the run and max_calls", async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    runStubTool = async (input) => {
      await released;
      return ranWith(input);
    };
    let turn = 0;
    model = () => (++turn === 1 ? calls('lookup', 'fetch') : finish('done'));
    const handle = await start([tool('lookup'), tool('fetch', 2)]);
    const details = async () => (await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails;
    await until(async () => (await details()) !== '', 'the tool calls to run');
    assert.equal(await details(), 'running lookup (tool call 1; call 1 of max_calls 3)\nrunning fetch (tool call 2; call 1 of max_calls 2)');
    release();
    await handle.result();
    assert.equal(await details(), '');
  });
});

describe('stream polls', () => {
  test('wait without a timer: no timer is in the history of a run followed from start to end', async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    runStubTool = async (input) => {
      await released;
      return ranWith(input);
    };
    let turn = 0;
    model = () => (++turn === 1 ? calls('lookup') : finish('done'));
    const handle = await start([tool('lookup')]);
    const seen: number[] = [];
    const follow = (async () => {
      for (let after = -1; ;) {
        const batch = await handle.executeUpdate(waitForEventsUpdate, { args: [{ after, timeoutMs: 1_000, feed: 'test-feed' }] });
        after += batch.events.length;
        seen.push(batch.events.length);
        if (batch.terminal) return;
      }
    })();
    await sleep(3_000); // three times the old poll timeout, waiting on the tool
    release();
    await follow;
    const events = (await handle.fetchHistory()).events ?? [];
    assert.ok(
      seen.every((n) => n > 0),
      `every poll answered with events: ${seen.join(', ')}`,
    );
    assert.equal(events.filter((e) => e.timerStartedEventAttributes).length, 0);
  });

  test('a newer poll of the same feed releases the older one, which answers superseded with no events', async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    runStubTool = async (input) => {
      await released;
      return ranWith(input);
    };
    let turn = 0;
    model = () => (++turn === 1 ? calls('lookup') : finish('done'));
    const handle = await start([tool('lookup')]);
    const poll = (feed: string) => handle.executeUpdate(waitForEventsUpdate, { args: [{ after: 0, timeoutMs: 1_000, feed }] });
    const older = poll('api-a');
    await sleep(500);
    const other = poll('api-b');
    const newer = poll('api-a');
    assert.deepEqual(await within(older, 'the older poll to be released', 10_000), { from: 1, events: [], superseded: true });
    release();
    assert.equal((await newer).events[0]?.object, 'tool.completion');
    assert.equal((await other).events[0]?.object, 'tool.completion');
    await handle.result();
  });
});
