/**
 * How a durable step is recorded in Temporal, read from the runs' histories:
 * the first stream poll rides on the start (also when an Idempotency-Key
 * attaches to a running run), and AgentTotalTokens is written once, at the end.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { workflowIdFor } from '../../common/run-ids';
import { scriptedAgent } from '../doubles/model-server';
import { post, readStream, runAgent } from '../support/sse';
import { useStack } from '../support/stack';
import { sleep } from '../support/wait';

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
