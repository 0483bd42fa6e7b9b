/**
 * Approvals against a real Temporal dev server (docs/api.md#b5-approvals): a
 * tool with `requires_approval` makes the run emit an `approval.request` and
 * wait, with no activity, until a reviewer decides through the approvals
 * endpoint (a Temporal Update), or its timeout denies it. A denied call never
 * reaches the platform; the model reads the denial as the tool's result.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import { scriptedAgent } from '../doubles/model-server';
import { dynoCreatesOf, dynoTool, follow, ids, messageFrames, newTag, resumeStream, workflowOf } from '../support/runs';
import { getJson, post, type Requester } from '../support/sse';
import { OTHER_API_KEY, useStack } from '../support/stack';
import { AGENT_AWAITING_APPROVAL } from '../../contract/search-attributes';
import { approvalRequestEvent, decidedApproval, runView } from '../../api/response-schemas';
import { until, within } from '../support/wait';

const stack = useStack({ persistent: true });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 180_000 };
const otherKey = (): Requester => ({ apiUrl: stack.apiUrl, apiKey: OTHER_API_KEY });

const guarded = (approval: Record<string, unknown> = {}) => {
  const tool = dynoTool('echo "step $TOOL_ARG_N"');
  return { ...tool, runtime_params: { ...tool.runtime_params, requires_approval: true, ...approval } };
};
/** A run whose model calls the guarded tool once per `n`, all in one reply. */
const guardedRun = (tag: string, ns: number[], approval: Record<string, unknown> = {}) => ({
  model: 'm',
  messages: [{ role: 'user', content: [tag, ...ns.map((n) => `CALL dyno_run_command {"n":${n}}`)].join('\n') }],
  tools: [guarded(approval)],
});
const stepResult = (n: number) => `Tool 'dyno_run_command' returned result: step ${n}`;

const decide = (runId: string, toolCallId: string, body: unknown, who: Requester = stack) =>
  getJson(who, `/v1/agents/runs/${runId}/approvals/${encodeURIComponent(toolCallId)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const statusOf = async (runId: string) => (await getJson(stack, `/v1/agents/runs/${runId}`)).body;
const approvalRequests = (frames: ReturnType<typeof follow>['frames']) =>
  messageFrames(frames)
    .map((f) => JSON.parse(f.data))
    .filter((e) => e.object === 'approval.request');
/** The message contents of the completion events (approval requests have none). */
const completionContents = (frames: ReturnType<typeof follow>['frames']) =>
  messageFrames(frames)
    .map((f) => JSON.parse(f.data))
    .filter((e) => e.object !== 'approval.request')
    .map((e) => e.choices[0].message.content);
const awaitingIds = async (): Promise<string[]> => {
  const { status, body } = await getJson(stack, '/v1/agents/runs?status=awaiting_approval&limit=100');
  assert.equal(status, 200);
  return body.data.map((r: { id: string }) => r.id);
};
const currentDetails = async (runId: string) =>
  (await workflowOf(stack.client, runId).query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '';

describe('approvals', () => {
  test('granted: the run waits with an approval.request, no activity pending; approved, the tool runs once', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const stream = follow(await post(stack, guardedRun(tag, [1])));
    await until(() => approvalRequests(stream.frames).length === 1, 'the approval request');
    const [request] = approvalRequests(stream.frames);
    const call = JSON.parse(messageFrames(stream.frames)[0]!.data).choices[0].message.tool_calls[0];
    assert.deepEqual(Object.keys(request).sort(), [
      'arguments',
      'created',
      'expires_at',
      'id',
      'name',
      'object',
      'system_fingerprint',
      'tool_call_id',
    ]);
    assert.deepEqual(
      { id: request.id, tool_call_id: request.tool_call_id, name: request.name, arguments: request.arguments },
      { id: stream.runId, tool_call_id: call.id, name: 'dyno_run_command', arguments: '{"n":1}' },
    );
    assert.equal(request.expires_at - request.created, 86_400, 'the default approval_timeout_seconds');
    approvalRequestEvent.parse(request); // the shape docs/openapi.json documents

    // Waiting: shown in the status, the list filter and the Temporal UI; no activity holds a worker slot.
    const waiting = await statusOf(stream.runId);
    runView.parse(waiting);
    assert.equal(waiting.status, 'running');
    assert.deepEqual(waiting.pending_approvals, [
      { tool_call_id: call.id, name: 'dyno_run_command', arguments: '{"n":1}', requested_at: request.created, expires_at: request.expires_at },
    ]);
    await until(async () => (await awaitingIds()).includes(stream.runId), 'the run in ?status=awaiting_approval');
    assert.match(await currentDetails(stream.runId), new RegExp(`^awaiting approval of dyno_run_command \\(tool call ${call.id}\\) until `));
    const { raw } = await workflowOf(stack.client, stream.runId).describe();
    assert.equal(raw.pendingActivities?.length ?? 0, 0);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 0);

    // Another key's run is a 404, like an unknown one; bad bodies are 400s naming the field.
    assert.equal((await decide(stream.runId, call.id, { decision: 'approve' }, otherKey())).status, 404);
    assert.deepEqual(await decide(stream.runId, call.id, { decision: 'maybe' }), {
      status: 400,
      body: { error: { code: 400, type: 'invalid_request_error', message: 'decision must be "approve" or "deny"' } },
    });
    assert.deepEqual((await decide(stream.runId, call.id, { decision: 'deny', reason: 7 })).body.error.message, 'reason must be a string');
    assert.deepEqual((await decide(stream.runId, call.id, {})).body.error.message, 'decision must be "approve" or "deny"');
    assert.deepEqual((await decide(stream.runId, call.id, '[1]')).body.error.message, 'the request body must be a JSON object');
    assert.deepEqual((await decide(stream.runId, 'call_unknown', { decision: 'approve' })).status, 404);

    const approved = await decide(stream.runId, call.id, { decision: 'approve' });
    assert.deepEqual(approved, {
      status: 200,
      body: { tool_call_id: call.id, name: 'dyno_run_command', decision: 'approve', reason: null, decided_by: 'reviewer' },
    });
    decidedApproval.parse(approved.body);
    const second = await decide(stream.runId, call.id, { decision: 'deny' });
    assert.equal(second.status, 409);
    assert.equal(second.body.error.type, 'conflict_error');

    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', '3', 'done']);
    assert.deepEqual(completionContents(stream.frames), [null, stepResult(1), `Done: ${stepResult(1)}`]);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 1);
    const done = await statusOf(stream.runId);
    assert.deepEqual([done.status, done.pending_approvals], ['completed', []]);
    assert.ok(!(await awaitingIds()).includes(stream.runId));
    // Decided, even after the run ended: 409; unknown: 404.
    assert.equal((await decide(stream.runId, call.id, { decision: 'approve' })).status, 409);
    assert.equal((await decide(stream.runId, 'call_unknown', { decision: 'approve' })).status, 404);
  });

  test('denied: the tool never runs and the model reads the denial with its reason', TEST_TIMEOUT, async () => {
    const stream = follow(await post(stack, guardedRun(newTag(), [1])));
    await until(() => approvalRequests(stream.frames).length === 1, 'the approval request');
    const [request] = approvalRequests(stream.frames);
    assert.equal((await decide(stream.runId, request.tool_call_id, { decision: 'deny', reason: 'not on a Friday' })).status, 200);

    await within(stream.ended, 'the stream to end', 60_000);
    const denial = "Tool 'dyno_run_command' returned result: Error: the call was denied by a reviewer: not on a Friday";
    assert.deepEqual(completionContents(stream.frames), [null, denial, `Done: ${denial}`]);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 0);
    assert.equal((await statusOf(stream.runId)).status, 'completed');
  });

  test('timed out: approval_timeout_seconds denies the call by itself (a durable timer)', TEST_TIMEOUT, async () => {
    const stream = follow(await post(stack, guardedRun(newTag(), [1], { approval_timeout_seconds: 2 })));
    await within(stream.ended, 'the stream to end', 60_000);
    const [request] = approvalRequests(stream.frames);
    assert.equal(request.expires_at - request.created, 2);
    const denial = "Tool 'dyno_run_command' returned result: Error: the call was denied: no reviewer decided within approval_timeout_seconds (2 s)";
    assert.deepEqual(completionContents(stream.frames), [null, denial, `Done: ${denial}`]);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 0);
    const history = await workflowOf(stack.client, stream.runId).fetchHistory();
    assert.equal(history.events!.filter((e) => e.timerFiredEventAttributes).length, 1);
    const done = await statusOf(stream.runId);
    assert.deepEqual(done.decided_approvals, [
      {
        tool_call_id: request.tool_call_id,
        name: 'dyno_run_command',
        decision: 'deny',
        reason: 'no reviewer decided within approval_timeout_seconds (2 s)',
        decided_by: 'timeout',
      },
    ]);
    assert.equal((await decide(stream.runId, request.tool_call_id, { decision: 'approve' })).status, 409);
  });

  test('parallel calls: every approval of a reply is pending at once, each decided on its own', TEST_TIMEOUT, async () => {
    const stream = follow(await post(stack, guardedRun(newTag(), [1, 2, 3])));
    await until(() => approvalRequests(stream.frames).length === 3, 'three approval requests');
    const requests = approvalRequests(stream.frames);
    assert.deepEqual(
      (await statusOf(stream.runId)).pending_approvals.map((a: { arguments: string }) => a.arguments),
      ['{"n":1}', '{"n":2}', '{"n":3}'],
    );
    // Decided out of order: the results still come in call order.
    assert.equal((await decide(stream.runId, requests[2].tool_call_id, { decision: 'approve' })).status, 200);
    assert.equal((await decide(stream.runId, requests[0].tool_call_id, { decision: 'deny' })).status, 200);
    assert.deepEqual(
      (await statusOf(stream.runId)).pending_approvals.map((a: { arguments: string }) => a.arguments),
      ['{"n":2}'],
    );
    assert.equal((await decide(stream.runId, requests[1].tool_call_id, { decision: 'approve' })).status, 200);
    await within(stream.ended, 'the stream to end', 60_000);
    const denial = "Tool 'dyno_run_command' returned result: Error: the call was denied by a reviewer";
    assert.deepEqual(completionContents(stream.frames).slice(1), [
      denial,
      stepResult(2),
      stepResult(3),
      `Done: ${[denial, stepResult(2), stepResult(3)].join('\n')}`,
    ]);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 2);
  });

  test('cancelled while it waits: the run ends cancelled and nothing is left pending', TEST_TIMEOUT, async () => {
    const stream = follow(await post(stack, guardedRun(newTag(), [1])));
    await until(() => approvalRequests(stream.frames).length === 1, 'the approval request');
    await until(async () => (await awaitingIds()).includes(stream.runId), 'the run in ?status=awaiting_approval');
    assert.equal((await getJson(stack, `/v1/agents/runs/${stream.runId}/cancel`, { method: 'POST' })).status, 202);
    await within(stream.ended, 'the stream to end', 60_000);
    assert.deepEqual(ids(stream.frames), ['0', '1', 'error', 'done']);
    const done = await statusOf(stream.runId);
    assert.deepEqual([done.status, done.pending_approvals], ['cancelled', []]);
    const { typedSearchAttributes } = await workflowOf(stack.client, stream.runId).describe();
    assert.equal(typedSearchAttributes.get(AGENT_AWAITING_APPROVAL), false);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 0);
  });

  test('decided after the worker, the API and the Temporal server were restarted: the run goes on from where it waited', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const stream = follow(await post(stack, guardedRun(tag, [1])));
    await until(() => approvalRequests(stream.frames).length === 1, 'the approval request');
    const [request] = approvalRequests(stream.frames);
    await Promise.all([stack.worker.kill('SIGKILL'), stack.api.kill('SIGKILL')]);
    assert.ok((await stream.ended).error, 'the stream was cut with its API');
    await stack.restartTemporal(); // the Temporal server too (SIGKILL; its SQLite file keeps the run)
    await Promise.all([stack.worker.start(), stack.api.start()]);

    // The status query waits for the new worker (the dead one's sticky queue times out first).
    await until(
      async () =>
        (await statusOf(stream.runId)).pending_approvals.map((a: { tool_call_id: string }) => a.tool_call_id).join() === request.tool_call_id,
      'the pending approval in the status',
      60_000,
    );
    assert.equal((await decide(stream.runId, request.tool_call_id, { decision: 'approve', reason: 'ok' })).status, 200);
    const rest = follow(await resumeStream(stack, stream.runId, '1'));
    const { error } = await within(rest.ended, 'the resumed stream to end', 60_000);
    assert.equal(error, undefined);
    assert.deepEqual(ids(rest.frames), ['2', '3', 'done']);
    assert.deepEqual(completionContents(rest.frames), [stepResult(1), `Done: ${stepResult(1)}`]);
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 1);
  });
});
