/**
 * One log format: every line the API and the worker print is a JSON object
 * (pino), the SDK's own lines included; lines about a run name it the same
 * way (runId, workflowId, and toolCallId for a tool call); task tokens and the
 * bundler's report are on debug lines only (the worker runs at
 * LOG_LEVEL=debug here, so they are there to find); no secret appears. And
 * the embedded Temporal server does not warn about our streams' long-polls.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { before, describe, test } from 'node:test';
import { reply, scriptedAgent } from '../doubles/model-server';
import { logLines, theLine, type LogLine } from '../support/logs';
import { useStack } from '../support/stack';
import { runAgent, type StreamResult } from '../support/sse';
import { until } from '../support/wait';

const stack = useStack({ workerEnv: { LOG_LEVEL: 'debug' } });

/** Longer than the server's default threshold for a "Slow gRPC call" warning (5 s). */
const SLOW_MODEL_MS = 8_000;

const dynoTool = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo hello', description: 'Says hello' } },
};

let toolRun: StreamResult;
let failedRun: StreamResult;
const workerLines = () => logLines(stack.worker.output);
const apiLines = () => logLines(stack.api.output);

describe('the log of the API and the worker', () => {
  before(async () => {
    // The first model call is slow, so the watching client's long-poll lasts as long.
    stack.model.setHandler((req) => (req.body.messages.length === 1 ? { ...scriptedAgent(req), delayMs: SLOW_MODEL_MS } : scriptedAgent(req)));
    toolRun = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }], tools: [dynoTool] });
    stack.model.setHandler(() => reply.error(400, { error: { message: 'no such model', type: 'invalid_request_error' } }));
    failedRun = await runAgent(stack, { model: 'nope', messages: [{ role: 'user', content: 'hi' }] });
    // The SDK's log lines leave the worker within about 100 ms.
    await until(() => workerLines().some((l) => l.msg === 'Activity failed'), "the worker's line about the failed model call");
  });

  test('is JSON lines, each with level, time, name and msg', () => {
    assert.equal(toolRun.messages.length, 3);
    const worker = workerLines();
    const api = apiLines();
    assert.ok(worker.length >= 5 && api.length >= 3, `${worker.length} worker and ${api.length} API lines`);
    assert.deepEqual(new Set(worker.map((l) => l.name)), new Set(['worker']));
    assert.deepEqual(new Set(api.map((l) => l.name)), new Set(['api']));
    // The SDK's lines (its worker, the Rust core, activities) are among them.
    assert.ok(['worker', 'core', 'activity'].every((c) => worker.some((l) => l.sdkComponent === c)));
  });

  test("the tool call's lines name the run, its workflow and the tool call", () => {
    const runId = toolRun.headers.get('agent-run-id')!;
    const line = theLine(workerLines(), /^running tool dyno_run_command$/);
    assert.equal(line.level, 'info');
    assert.equal(line.runId, runId);
    assert.equal(line.workflowId, runId.replace('chatcmpl-', 'agent-run-'));
    assert.equal(line.toolCallId, `${runId}:0`);
    assert.match(String(line.temporalRunId), /^[0-9a-f-]{36}$/);
    // The SDK's own lines about the tool's activity too, once its input is known (the SDK says it started before).
    const sdkLines = workerLines().filter((l) => l.activityType === 'runTool' && l.sdkComponent === 'worker');
    assert.deepEqual(
      sdkLines.map((l) => [l.msg, l.runId, l.toolCallId]),
      [
        ['Activity started', runId, undefined],
        ['Activity completed', runId, `${runId}:0`],
      ],
    );
  });

  test('the API names each run it starts the same way', () => {
    const started = apiLines().filter((l) => l.msg === 'run started');
    assert.deepEqual(
      started.map((l) => [l.runId, l.workflowId]),
      [toolRun, failedRun].map((r) => {
        const runId = r.headers.get('agent-run-id')!;
        return [runId, runId.replace('chatcmpl-', 'agent-run-')];
      }),
    );
  });

  test('a failed model call is one warning naming the run and the URL it tried', () => {
    const runId = failedRun.headers.get('agent-run-id')!;
    const line = theLine(workerLines(), /^Activity failed$/);
    assert.equal(line.level, 'warn');
    assert.equal(line.runId, runId);
    const error = line.error as { message: string };
    assert.equal(error.message, `the upstream model API (${stack.model.url}/v1/chat/completions) answered 400: no such model`);
  });

  test('has task tokens and the bundler report on debug lines only, and no secret', () => {
    const all: LogLine[] = [...workerLines(), ...apiLines()];
    assert.ok(all.some((l) => l.level === 'debug' && typeof l.taskToken === 'string' && l.toolCallId));
    assert.ok(all.some((l) => l.level === 'debug' && l.msg.includes('workflow-bundle')));
    const infoAndAbove = all.filter((l) => !['trace', 'debug'].includes(l.level));
    assert.deepEqual(
      infoAndAbove.filter((l) => 'taskToken' in l || l.msg.includes('\n')),
      [],
    );
    for (const secret of stack.secrets) {
      assert.equal(stack.worker.output.includes(secret), false, 'a secret reached the worker log');
      assert.equal(stack.api.output.includes(secret), false, 'a secret reached the API log');
    }
  });

  test('the Temporal server does not warn about the long-polls of a watched run', () => {
    const slowModelCall = toolRun.messages[0];
    assert.equal(slowModelCall.choices[0].finish_reason, 'tool_calls');
    const serverLog = fs.readFileSync(stack.temporalLog, 'utf8');
    assert.doesNotMatch(serverLog, /Slow gRPC call/);
  });
});
