/**
 * The tool activity's side of a call, in Temporal's mock activity context:
 * the one path from an error to what the model reads, and the one heartbeat
 * wrapper every activity runs in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CANCEL_GRACE_MS, HEARTBEAT_INTERVAL_MS, withHeartbeats } from '../../activities/heartbeat';
import { createToolRunner } from '../../activities/run-tool';
import { JsonSchemas } from '../../catalog/json-schema';
import { workerConfig } from '../../common/config';
import type { ResolvedTool, ToolCallInput, ToolCallResult } from '../../contract/run-contract';
import { callToolResult, errorPayload } from '../../contract/tool-payload';
import type { BoundRunner } from '../../runners/registry';
import { ToolError } from '../../tool-call/tool-error';
import { until, within } from '../support/wait';

const tool: ResolvedTool = {
  name: 'echo',
  type: 'heroku_tool',
  sideEffect: 'read-only',
  function: { name: 'echo', description: 'Echoes', parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
  runtime: { dyno_size: 'standard-1x', ttl_seconds: 5, max_calls: 3, tool_params: {} },
};
const input = (args: string): ToolCallInput => ({ runId: 'chatcmpl-1', callKey: 'chatcmpl-1:0', tool, arguments: args });

/** Runs the tool activity with `runner` for every tool. */
function runTool(runner: BoundRunner | undefined, args: string): Promise<ToolCallResult> {
  const activity = createToolRunner(() => runner, new JsonSchemas(workerConfig({}).toolSchemas));
  return new MockActivityEnvironment().run<[ToolCallInput], ToolCallResult, typeof activity>(activity, input(args));
}

describe('errorPayload: the one path from an error to the model', () => {
  test('plain text tools read "Error: ..."; CallToolResult tools an isError result', () => {
    assert.equal(errorPayload('it broke'), 'Error: it broke');
    assert.equal(errorPayload('it broke', 'call-tool-result'), '{"content":[{"type":"text","text":"it broke"}],"isError":true}');
    assert.equal(callToolResult('fine'), '{"content":[{"type":"text","text":"fine"}],"isError":false}');
  });
});

describe('the tool activity', () => {
  const echo: BoundRunner = { payload: 'text', run: (_ctx, args) => Promise.resolve(`echo: ${String(args.text)}`) };

  test('runs the runner with the parsed arguments and the call key', async () => {
    let key = '';
    const result = await runTool(
      { payload: 'text', run: (ctx, args) => Promise.resolve(`${(key = ctx.callKey)} ${String(args.text)}`) },
      '{"text":"hi"}',
    );
    assert.deepEqual(result, { payload: 'chatcmpl-1:0 hi' });
    assert.equal(key, 'chatcmpl-1:0');
  });

  test('refusals before anything runs are plain text', async () => {
    assert.deepEqual(await runTool(undefined, '{}'), { payload: "Error: this worker has no tool named 'echo'." });
    assert.match((await runTool(echo, '{"text": nope')).payload, /^Error: the arguments are not valid JSON \(.*\); the tool was not run\.$/);
    assert.equal((await runTool(echo, '{"text": 5}')).payload, 'Error: invalid arguments: arguments/text must be string; the tool was not run.');
  });

  test("a ToolError reaches the model in the tool's own format", async () => {
    const failing = (payload: BoundRunner['payload']): BoundRunner => ({ payload, run: () => Promise.reject(new ToolError('the database said no')) });
    assert.deepEqual(await runTool(failing('text'), '{"text":"x"}'), { payload: 'Error: the database said no' });
    assert.deepEqual(await runTool(failing('call-tool-result'), '{"text":"x"}'), {
      payload: '{"content":[{"type":"text","text":"the database said no"}],"isError":true}',
    });
  });

  test('any other error fails the activity, for Temporal to retry or report', async () => {
    const broken: BoundRunner = { payload: 'text', run: () => Promise.reject(new TypeError('a bug')) };
    await assert.rejects(runTool(broken, '{"text":"x"}'), TypeError);
  });
});

describe('withHeartbeats', () => {
  test('a quick activity sends no heartbeat at all', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(
      withHeartbeats(() => new Promise((resolve) => setTimeout(resolve, HEARTBEAT_INTERVAL_MS / 4))),
      undefined,
    );
    assert.deepEqual(beats, []);
  });

  test('the first heartbeat comes after an interval, then they repeat with the latest progress', async () => {
    const env = new MockActivityEnvironment();
    const beats: { at: number; details: unknown }[] = [];
    const start = Date.now();
    env.on('heartbeat', (details: unknown) => beats.push({ at: Date.now() - start, details }));
    await env.run(
      withHeartbeats(async (_input: undefined, progress) => {
        progress({ step: 1 });
        await until(() => beats.length >= 1, 'the first heartbeat', 10 * HEARTBEAT_INTERVAL_MS);
        progress({ step: 2 });
        await until(() => beats.length >= 2, 'the second heartbeat', 10 * HEARTBEAT_INTERVAL_MS);
      }),
      undefined,
    );
    assert.ok(beats[0]!.at >= 0.9 * HEARTBEAT_INTERVAL_MS, `the first heartbeat came after ${beats[0]!.at} ms`);
    assert.deepEqual(
      beats.slice(0, 2).map((b) => b.details),
      [{ step: 1 }, { step: 2 }],
    );
  });

  test('cancellation reaches the work through the activity signal', async () => {
    const env = new MockActivityEnvironment();
    const work = env.run(
      withHeartbeats(
        () =>
          new Promise((_resolve, reject) => {
            const signal = env.context.cancellationSignal;
            signal.addEventListener('abort', () => reject(signal.reason as Error));
          }),
      ),
      undefined,
    );
    setTimeout(() => env.cancel(), 100);
    await assert.rejects(work, CancelledFailure);
  });

  test('work that ignores its cancellation is reported cancelled after CANCEL_GRACE_MS, so no run waits on it for ever', async () => {
    const env = new MockActivityEnvironment();
    const start = Date.now();
    const work = env.run(
      withHeartbeats(() => new Promise(() => {})),
      undefined,
    );
    setTimeout(() => env.cancel(), 100);
    await assert.rejects(within(work, 'the cancellation to be reported', 3 * CANCEL_GRACE_MS), (err: unknown) => err instanceof CancelledFailure);
    assert.ok(Date.now() - start >= CANCEL_GRACE_MS, 'the work got its grace period first');
  });
});
