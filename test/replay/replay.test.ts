/**
 * Determinism check: the saved histories of real runs (test/replay/histories,
 * recorded by test/replay/record.ts) are replayed through today's workflow
 * code. A change that would break runs already in flight (a command added,
 * removed or reordered without `patched()`) fails here. No server needed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { runIdForIdempotencyKey } from '../../common/run-ids';

const HISTORIES = path.join(__dirname, 'histories');
const files = fs
  .readdirSync(HISTORIES)
  .filter((f) => f.endsWith('.json'))
  .sort();

type Event = { eventType?: string } & Record<string, any>;
const eventsOf = (file: string): Event[] => JSON.parse(fs.readFileSync(path.join(HISTORIES, file), 'utf8')).events;
const payloadJson = (payload: { data?: string } | undefined) => JSON.parse(Buffer.from(payload?.data ?? '', 'base64').toString('utf8'));
/** The files of a scenario's latest recording: `<scenario>.json`, or `<scenario>-N.json` per execution, in order. */
const recording = (scenario: string) =>
  files
    .filter((f) => new RegExp(`^${scenario}(-\\d+)?\\.json$`).test(f))
    .sort((a, b) => Number(/-(\d+)\.json$/.exec(a)?.[1] ?? 0) - Number(/-(\d+)\.json$/.exec(b)?.[1] ?? 0));
const types = (events: Event[]) => events.map((e) => String(e.eventType).replace('EVENT_TYPE_', ''));
const activities = (events: Event[]) => events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);

/** What makes each scenario's history the scenario it claims to be. */
const SCENARIOS: Record<string, (executions: Event[][]) => void> = {
  'tool-call': ([events]) => {
    assert.deepEqual(activities(events!), ['callModel', 'runTool', 'callModel']);
    assert.equal(types(events!).at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
  },
  'cancel-during-tool': ([events]) => {
    const t = types(events!);
    assert.deepEqual(activities(events!), ['callModel', 'runTool']);
    assert.ok(t.includes('WORKFLOW_EXECUTION_CANCEL_REQUESTED') && t.includes('ACTIVITY_TASK_CANCEL_REQUESTED'), t.join(' '));
    assert.equal(t.at(-1), 'WORKFLOW_EXECUTION_CANCELED');
  },
  'continue-as-new': (executions) => {
    assert.ok(executions.length >= 2, 'the run continued as new at least once');
    for (const events of executions.slice(0, -1)) assert.equal(types(events).at(-1), 'WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    assert.equal(types(executions.at(-1)!).at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
    // Each later execution starts from the state its predecessor carried over.
    for (const events of executions.slice(1)) {
      const input = payloadJson(events[0]!.workflowExecutionStartedEventAttributes.input.payloads[0]);
      assert.ok(input.carried?.baseOffset > 0, 'a continued execution carries its stream offset');
    }
  },
  'upstream-4xx': ([events]) => {
    const t = types(events!);
    assert.ok(t.includes('ACTIVITY_TASK_FAILED'));
    assert.equal(t.at(-1), 'WORKFLOW_EXECUTION_FAILED');
  },
  'parallel-tools': ([events]) => {
    // One model reply asked for several tools: they are scheduled together, before the next model call.
    const names = activities(events!);
    assert.equal(names[0], 'callModel');
    assert.ok(names.slice(1, -1).length >= 2 && names.slice(1, -1).every((n) => n === 'runTool'), names.join(' '));
    assert.equal(names.at(-1), 'callModel');
    assert.equal(types(events!).at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
  },
  approval: ([events]) => {
    // Two calls waited for a reviewer (two updates accepted); only the approved one ran.
    const t = types(events!);
    const decisions = events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'decideApproval');
    assert.equal(decisions.length, 2);
    assert.deepEqual(activities(events!), ['callModel', 'runTool', 'callModel']);
    assert.equal(t.at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
  },
  'budget-stop': ([events]) => {
    // One step, then the max_total_tokens budget ended the run as failed (budget_exceeded).
    assert.deepEqual(activities(events!), ['callModel', 'runTool']);
    const last = events!.at(-1)!;
    assert.equal(types([last])[0], 'WORKFLOW_EXECUTION_FAILED');
    assert.equal(last.workflowExecutionFailedEventAttributes.failure.applicationFailureInfo.type, 'budget_exceeded');
  },
  'idempotent-reattach': ([events]) => {
    // Its run id is the one the Idempotency-Key and the caller's key id give: the run two POSTs attached to.
    const started = events![0]!.workflowExecutionStartedEventAttributes;
    const input = payloadJson(started.input.payloads[0]);
    const apiKeyId = payloadJson(started.memo.fields.apiKeyId);
    assert.equal(input.runId, runIdForIdempotencyKey(apiKeyId, 'replay-key'));
    assert.equal(types(events!).at(-1), 'WORKFLOW_EXECUTION_COMPLETED');
  },
};

for (const [scenario, check] of Object.entries(SCENARIOS)) {
  test(`a saved history is a ${scenario} run`, () => {
    const recorded = recording(scenario);
    assert.ok(recorded.length > 0, `no history of ${scenario}`);
    check(recorded.map(eventsOf));
  });
}

test('the histories of the first workflow version are kept', () => {
  // Runs started by older workflow code may still be in flight (v1: before the 'lean-steps' patch).
  assert.ok(files.filter((f) => f.startsWith('v1-')).length >= 5, 'the histories of the first version are kept');
});

/** Replays every saved history with these worker options; the failures, by workflow id. */
async function replayAll(options: Omit<ReplayWorkerOptions, 'workflowsPath'> = {}): Promise<string[]> {
  const histories = files.map((file) => ({
    workflowId: file.replace(/\.json$/, ''),
    history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(HISTORIES, file), 'utf8'))),
  }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ ...options, workflowsPath: require.resolve('../../workflows') }, histories)) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  assert.equal(replayed, files.length);
  return failures;
}

test('every saved history replays through the current workflow code', { timeout: 120_000 }, async () => {
  assert.deepEqual(await replayAll(), []);
});

test("every saved history replays with tracing's workflow interceptors registered", { timeout: 120_000 }, async () => {
  // As common/tracing.ts registers them when OTEL_EXPORTER_OTLP_ENDPOINT is set; the spans stay in memory.
  const resource = new Resource({ 'service.name': 'replay' });
  const plugin = new OpenTelemetryPlugin({ resource, spanProcessor: new SimpleSpanProcessor(new InMemorySpanExporter()) });
  assert.deepEqual(await replayAll({ plugins: [plugin] }), []);
});
