/**
 * Long runs stay within Temporal's limits: hundreds of steps continue-as-new
 * without losing or repeating an event, and tool outputs that add up to more
 * than a payload may hold are kept out of history.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelHandler } from '../doubles/model-server';
import { reply } from '../doubles/model-server';
import * as fs from 'node:fs';
import { workflowIdFor } from '../../common/run-ids';
import { executionHistories, historyText, largestPayloadBytes, storedPayloadsText, STORED_PAYLOAD_REFERENCE } from '../support/history';
import { useStack } from '../support/stack';
import { getJson, resume, runAgent } from '../support/sse';
import { until } from '../support/wait';

const stack = useStack({ apiEnv: { MAX_MODEL_CALLS_PER_RUN: '1000', MAX_TOOL_CALLS: '1000' } });

/** Calls the tool until the conversation holds `steps` model answers, then says it is finished. */
const stepsThenStop =
  (steps: number): ModelHandler =>
  ({ body }) => {
    const answered = body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
    return answered + 1 < steps
      ? reply.toolCalls([{ name: 'dyno_run_command', arguments: { n: answered } }])
      : reply.text(`finished after ${steps} model calls`);
  };

const tool = (cmd: string) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'my-app', max_calls: 1000, tool_params: { cmd, description: 'step', parameters: { type: 'object' } } },
});

/** Resolves once the run's last execution has closed: its history is complete. */
const closed = (runId: string) =>
  until(async () => (await stack.client.workflow.getHandle(workflowIdFor(runId)).describe()).status.name !== 'RUNNING', 'the run to close');

/** How each execution of the run ended, oldest first. */
async function executionsOf(runId: string): Promise<string[]> {
  await closed(runId);
  const histories = await executionHistories(stack.client, workflowIdFor(runId));
  return histories.map((h) => {
    const last = h.events?.at(-1);
    return last?.workflowExecutionContinuedAsNewEventAttributes
      ? 'continued-as-new'
      : last?.workflowExecutionCompletedEventAttributes
        ? 'completed'
        : 'other';
  });
}

const PAYLOAD_LIMIT = 256 * 1024;

test('300 model calls in one run: continue-as-new, every event exactly once, resume across the boundary', { timeout: 600_000 }, async () => {
  stack.model.setHandler(stepsThenStop(300));
  const res = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'go' }], tools: [tool('echo "step $TOOL_ARG_N"')] });
  const runId = res.headers.get('agent-run-id')!;
  const ids = res.frames.filter((f) => f.event === 'message').map((f) => Number(f.id));
  assert.equal(ids.length, 599);
  assert.deepEqual(
    ids,
    Array.from({ length: 599 }, (_, i) => i),
  );
  assert.equal(res.frames.at(-1)!.event, 'done');
  assert.equal(res.messages.at(-1).choices[0].message.content, 'finished after 300 model calls');
  const tools = res.messages.filter((m) => m.object === 'tool.completion');
  tools.forEach((m, i) => assert.equal(m.choices[0].message.content, `Tool 'dyno_run_command' returned result: step ${i}`));

  const executions = await executionsOf(runId);
  assert.ok(executions.length >= 2, `executions: ${executions.join(', ')}`);
  assert.deepEqual(executions, [...Array<string>(executions.length - 1).fill('continued-as-new'), 'completed']);
  // The leak checks read every execution: the first steps are in the first one's history, the last in the last one's.
  const history = await historyText(stack.client, workflowIdFor(runId));
  assert.ok(history.includes('step 0') && history.includes('step 298'), 'expected the histories of every execution');
  for (const secret of stack.secrets) assert.equal(history.includes(secret), false, 'a secret reached the history of an execution');

  // Offsets logged by earlier executions replay as well as the last ones.
  const replay = await resume(stack, runId, {}, '?after=10');
  assert.deepEqual(
    replay.frames.filter((f) => f.event === 'message').map((f) => Number(f.id)),
    ids.slice(11),
  );
  assert.equal(replay.raw.replace(/:keep-alive\n\n/g, ''), res.raw.slice(res.raw.indexOf('id:11\n')).replace(/:keep-alive\n\n/g, ''));

  const status = (await getJson(stack, `/v1/agents/runs/${runId}`)).body;
  assert.equal(status.status, 'completed');
  assert.equal(status.model_calls, 300);
  assert.deepEqual(status.tool_calls, { dyno_run_command: 299 });
  assert.equal(status.events, 599);
});

test('tool outputs adding up to more than a payload may hold are kept out of history', { timeout: 600_000 }, async () => {
  stack.model.setHandler(stepsThenStop(45));
  // 60 KB a call: the conversation passes Temporal's 2 MiB payload limit half way through.
  const res = await runAgent(stack, {
    model: 'm',
    messages: [{ role: 'user', content: 'big' }],
    tools: [tool(`head -c 60000 /dev/zero | tr '\\0' x`)],
  });
  assert.equal(
    res.frames.some((f) => f.event === 'error'),
    false,
    res.frames.find((f) => f.event === 'error')?.data,
  );
  assert.equal(res.messages.length, 89);
  for (const m of res.messages.filter((m) => m.object === 'tool.completion')) {
    assert.equal(m.choices[0].message.content.length, "Tool 'dyno_run_command' returned result: ".length + 60_000);
  }
  const lastCall = stack.model.requests.at(-1)!.body;
  assert.ok(JSON.stringify(lastCall.messages).length > 2 * 1024 * 1024, 'the conversation outgrew one payload');
  assert.equal(res.messages.at(-1).choices[0].message.content, 'finished after 45 model calls');

  // Out of history: each payload there is at most the threshold, the large ones are references to the store.
  const runId = res.headers.get('agent-run-id')!;
  await closed(runId);
  const histories = await executionHistories(stack.client, workflowIdFor(runId));
  for (const h of histories) assert.ok(largestPayloadBytes(h) <= PAYLOAD_LIMIT, `a ${largestPayloadBytes(h)}-byte payload is in history`);
  const history = await historyText(stack.client, workflowIdFor(runId));
  assert.ok(history.includes(STORED_PAYLOAD_REFERENCE), 'the history refers to stored payloads');

  // ...and in PAYLOAD_STORE_DIR, where no secret may be either.
  const stored = storedPayloadsText(stack.payloadDir);
  assert.ok(stored.files > 0 && stored.text.includes('x'.repeat(60_000)), 'the large conversation is in the payload store');
  const serverLog = fs.readFileSync(stack.temporalLog, 'utf8');
  for (const secret of stack.secrets) {
    assert.equal(stored.text.includes(secret), false, 'a secret reached PAYLOAD_STORE_DIR');
    assert.equal(serverLog.includes(secret), false, "a secret reached the Temporal server's log");
  }
});
