/**
 * How a durable step is recorded in Temporal, read from the runs' histories:
 * the first stream poll rides on the start (also when an Idempotency-Key
 * attaches to a running run), a model call gets only the messages it has not
 * been given (also after its worker died and took its cache along), the tool
 * calls of one reply run at once, a cancel waits until every activity
 * acknowledged it, and AgentTotalTokens is written once, at the end.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { workflowIdFor } from '../../common/run-ids';
import { reply, scriptedAgent } from '../doubles/model-server';
import { getJson, post, readStream, runAgent } from '../support/sse';
import { useStack } from '../support/stack';
import { sleep, until } from '../support/wait';

const stack = useStack();
beforeEach(() => stack.model.setHandler(scriptedAgent));

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const ask = (content: string, tools: unknown[] = []) => ({ model: 'm', messages: [{ role: 'user', content }], ...(tools.length ? { tools } : {}) });
const dyno = (cmd: string, maxCalls = 3) => ({
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: {
    target_app_name: 'my-app',
    max_calls: maxCalls,
    tool_params: { cmd, description: 'Runs a command', parameters: { type: 'object', properties: { n: { type: 'integer' } } } },
  },
});

async function historyOf(runId: string): Promise<HistoryEvent[]> {
  return (await stack.client.workflow.getHandle(workflowIdFor(runId)).fetchHistory()).events ?? [];
}

/** The decoded JSON of a payload list's first payload. */
const firstPayload = (payloads: temporal.api.common.v1.IPayloads | null | undefined): any =>
  JSON.parse(Buffer.from(payloads?.payloads?.[0]?.data ?? []).toString('utf8'));

const kinds = (events: HistoryEvent[]) =>
  events.map((e) =>
    Object.keys(e)
      .find((k) => k.endsWith('EventAttributes'))
      ?.replace('EventAttributes', ''),
  );

describe('the first stream poll rides on the start', () => {
  test('the run takes its first poll in its first workflow task; a retry with the Idempotency-Key attaches its own while it runs', async () => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 1_500 }) as never);
    const key = `rides-${Date.now()}`;
    const first = post(stack, ask('ride along'), { 'Idempotency-Key': key }).then((res) => readStream(res));
    await sleep(500);
    const conflict = await post(stack, ask('another body'), { 'Idempotency-Key': key });
    assert.equal(conflict.status, 409);
    const second = await runAgent(stack, ask('ride along'), { 'Idempotency-Key': key });
    const firstRun = await first;
    const runId = firstRun.headers.get('agent-run-id')!;
    assert.equal(second.headers.get('agent-run-id'), runId);
    assert.equal(second.raw, firstRun.raw);
    assert.equal(stack.model.requests.filter((r) => r.body.messages[0].content === 'ride along').length, 1);

    const events = await historyOf(runId);
    const names = kinds(events);
    const firstAccepted = names.indexOf('workflowExecutionUpdateAccepted');
    const secondTask = names.indexOf('workflowTaskScheduled', names.indexOf('workflowTaskCompleted'));
    assert.ok(firstAccepted > 0 && firstAccepted < secondTask, `the first poll is accepted with the first workflow task: ${names.join(', ')}`);
    assert.deepEqual(firstPayload(events[firstAccepted]!.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args).after, -1);
    // The retry's poll, from the same API process, released the first one: two polls in all, one answered with the events.
    const completed = events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes);
    assert.equal(names.filter((n) => n === 'workflowExecutionUpdateAccepted').length, completed.length);
  });
});

describe('model calls get the conversation by reference', () => {
  test('after the first call, a call carries only the new messages; a worker that lost its cache asks the run for the rest', async () => {
    let attempts = 0;
    stack.model.setHandler((req) => {
      const turn = req.body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
      if (turn === 0) return reply.toolCalls([{ name: 'dyno_run_command', arguments: { n: 1 } }]);
      return ++attempts === 1 ? reply.hang() : reply.text('finished');
    });
    const res = await post(stack, ask('remember me', [dyno('echo "step $TOOL_ARG_N"')]));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => attempts === 1, 'the second model call');
    await stack.worker.kill();
    await stack.worker.start();
    const stream = await reading;
    assert.equal(stream.messages.at(-1)?.choices[0].message.content, 'finished');

    // The new worker had no cache: its attempt still sent the whole conversation, like the first.
    const calls = stack.model.requests.filter((r) => r.body.messages[0].content === 'remember me');
    assert.equal(calls.length, 3);
    assert.deepEqual(
      calls[2]!.body.messages.map((m: { role: string }) => m.role),
      ['user', 'assistant', 'tool'],
    );
    assert.deepEqual(calls[2]!.body.messages, calls[1]!.body.messages);

    const inputs = (await historyOf(runId))
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'callModel')
      .map((e) => firstPayload(e.activityTaskScheduledEventAttributes?.input));
    assert.deepEqual(
      inputs.map((i) => [i.known, i.messages.map((m: { role: string }) => m.role)]),
      [
        [0, ['user']],
        [1, ['assistant', 'tool']],
      ],
    );
  });
});

describe('tool calls of one reply', () => {
  test('run at once, and their results come in the order of the calls, a crashing one included', async () => {
    const body = ask('CALL dyno_run_command {"n":1}\nCALL dyno_run_command {"n":2}\nCALL dyno_run_command {"n":3}', [
      // Call 2's dyno dies at once, shell and all, without reporting an exit status.
      dyno('if [ "$TOOL_ARG_N" = 2 ]; then kill -KILL $$ $BASHPID; fi; sleep 2; echo "step $TOOL_ARG_N"'),
    ]);
    const createsBefore = stack.heroku.creates.length;
    const running = runAgent(stack, body);
    // Call 2's dyno dies at once; 1 and 3 sleep for two seconds side by side.
    await until(() => stack.heroku.creates.length - createsBefore === 3 && stack.heroku.running() === 2, 'calls 1 and 3 running at once');
    const res = await running;
    assert.deepEqual(
      res.messages.map((m) => m.object),
      ['chat.completion', 'tool.completion', 'tool.completion', 'tool.completion', 'chat.completion'],
    );
    const calls = res.messages[0].choices[0].message.tool_calls.map((c: { id: string }) => c.id);
    const results = res.messages.slice(1, 4).map((m) => m.choices[0].message);
    assert.deepEqual(
      results.map((m) => m.tool_call_id),
      calls,
    );
    assert.equal(results[0].content, "Tool 'dyno_run_command' returned result: step 1");
    assert.match(
      results[1].content,
      /^Tool 'dyno_run_command' returned result: \s*\[exit status unknown: the process ended without reporting one\]$/,
    );
    assert.equal(results[2].content, "Tool 'dyno_run_command' returned result: step 3");
  });
});

describe('cancel', () => {
  test('waits until every activity acknowledged it: the history shows each one cancelled, and none is left pending', async () => {
    const body = ask('CALL dyno_run_command {"n":1}\nCALL dyno_run_command {"n":2}', [dyno('echo begun; sleep 100')]);
    const res = await post(stack, body);
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => stack.heroku.running() === 2, 'both dynos to run');
    await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    const stream = await reading;
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    const names = kinds(await historyOf(runId));
    const cancelled = names.flatMap((n, i) => (n === 'activityTaskCanceled' ? [i] : []));
    assert.equal(cancelled.length, 2, names.join(', '));
    assert.ok(Math.max(...cancelled) < names.indexOf('workflowExecutionCanceled'));
    const { raw } = await stack.client.workflow.getHandle(workflowIdFor(runId)).describe();
    assert.deepEqual(raw.pendingActivities ?? [], []);
  });

  test('a model call is cancelled the same way', async () => {
    stack.model.setHandler(() => reply.hang());
    const res = await post(stack, ask('hang on'));
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(() => stack.model.requests.some((r) => r.body.messages[0].content === 'hang on'), 'the model call');
    await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    await reading;
    const names = kinds(await historyOf(runId));
    assert.ok(
      names.indexOf('activityTaskCanceled') > 0 && names.indexOf('activityTaskCanceled') < names.indexOf('workflowExecutionCanceled'),
      names.join(', '),
    );
  });
});

describe('AgentTotalTokens', () => {
  test('is written once, when the run ends, with its total', async () => {
    const res = await runAgent(stack, ask('CALL dyno_run_command {"n":1}', [dyno('echo hi')]));
    const runId = res.headers.get('agent-run-id')!;
    const events = await historyOf(runId);
    // Besides the one that records the workflow's patch (TemporalChangeVersion), one upsert: after the last step.
    const upserts = events.flatMap((e, i) =>
      e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.AgentTotalTokens ? [i] : [],
    );
    assert.equal(upserts.length, 1);
    assert.ok(upserts[0]! > kinds(events).lastIndexOf('activityTaskCompleted'));
    const total = res.messages.reduce((n, m) => n + (m.usage?.total_tokens ?? 0), 0);
    assert.ok(total > 0);
    const { searchAttributes } = await stack.client.workflow.getHandle(workflowIdFor(runId)).describe();
    assert.deepEqual(searchAttributes.AgentTotalTokens, [total]);
  });
});
