/**
 * Per-run budgets against a real Temporal dev server (docs/api.md#b6-budgets):
 * `max_total_tokens` and `max_duration_seconds` end a run after the step in
 * progress with an `error` event of type `budget_exceeded` and then `done`;
 * a duration budget also ends a wait for approval. The run's webhook reports
 * the budget stop like any other end.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { scriptedAgent } from '../doubles/model-server';
import { dynoCreatesOf, dynoTool, follow, ids, messageFrames, newTag } from '../support/runs';
import { getJson, post } from '../support/sse';
import { useStack } from '../support/stack';
import { until, within } from '../support/wait';

/** Bodies POSTed to the webhook receiver. */
const received: string[] = [];
let receiverUrl = '';
let server: http.Server | undefined;
before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const webhookEnv = { WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`, WEBHOOK_ALLOW_HOSTS: '127.0.0.1' };
const stack = useStack({ apiEnv: webhookEnv, workerEnv: webhookEnv });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 120_000 };
const STEP = dynoTool('echo "step $TOOL_ARG_N"');
const parsed = (frames: ReturnType<typeof follow>['frames']) => messageFrames(frames).map((f) => JSON.parse(f.data));
const errorOf = (frames: ReturnType<typeof follow>['frames']) => JSON.parse(frames.find((f) => f.event === 'error')!.data).error;

describe('per-run budgets', () => {
  test('max_total_tokens: the run ends after the step that reached it, with budget_exceeded, and its webhook says so', TEST_TIMEOUT, async () => {
    // LOOP: the model would call the tool for ever.
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: `${newTag()}\nLOOP dyno_run_command {"n":1}` }],
      tools: [STEP],
      max_total_tokens: 1,
      webhook: receiverUrl,
    };
    const stream = follow(await post(stack, body));
    const { error } = await within(stream.ended, 'the stream to end', 60_000);
    assert.equal(error, undefined);
    // The step in progress (the model call and its tool call) finishes; no second model call.
    assert.deepEqual(ids(stream.frames), ['0', '1', 'error', 'done']);
    assert.deepEqual(
      parsed(stream.frames).map((e) => e.object),
      ['chat.completion', 'tool.completion'],
    );
    const used = parsed(stream.frames)[0].usage.total_tokens as number;
    assert.ok(used >= 1);
    assert.deepEqual(errorOf(stream.frames), {
      code: 429,
      type: 'budget_exceeded',
      message: `the run used ${used} tokens, reaching its max_total_tokens budget of 1`,
    });
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 1);
    const status = (await getJson(stack, `/v1/agents/runs/${stream.runId}`)).body;
    assert.deepEqual([status.status, status.model_calls, status.error?.type], ['failed', 1, 'budget_exceeded']);

    await until(() => received.some((b) => JSON.parse(b).data.id === stream.runId), 'the webhook');
    const payload = JSON.parse(received.find((b) => JSON.parse(b).data.id === stream.runId)!);
    assert.equal(payload.type, 'run.failed');
    assert.deepEqual(payload.data.error, errorOf(stream.frames));
  });

  test('max_duration_seconds ends a wait for approval: the call is denied, then the run ends with budget_exceeded', TEST_TIMEOUT, async () => {
    const guarded = { ...STEP, runtime_params: { ...STEP.runtime_params, requires_approval: true } };
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: `${newTag()}\nCALL dyno_run_command {"n":1}` }],
      tools: [guarded],
      max_duration_seconds: 3,
    };
    const stream = follow(await post(stack, body));
    await within(stream.ended, 'the stream to end', 60_000);
    assert.deepEqual(ids(stream.frames), ['0', '1', '2', 'error', 'done']);
    const events = parsed(stream.frames);
    assert.deepEqual(
      events.map((e) => e.object),
      ['chat.completion', 'approval.request', 'tool.completion'],
    );
    assert.equal(
      events[2].choices[0].message.content,
      "Tool 'dyno_run_command' returned result: Error: the call was denied: the run reached its max_duration_seconds budget (3 s)",
    );
    assert.deepEqual(errorOf(stream.frames), {
      code: 429,
      type: 'budget_exceeded',
      message: 'the run reached its max_duration_seconds budget of 3 s',
    });
    assert.equal(dynoCreatesOf(stack.heroku, stream.runId).length, 0);
    const status = (await getJson(stack, `/v1/agents/runs/${stream.runId}`)).body;
    assert.equal(status.decided_approvals[0].decided_by, 'budget');
    assert.equal(status.model_calls, 1);
  });

  test('max_duration_seconds does not cut a slow model call: the step finishes, then the run ends', TEST_TIMEOUT, async () => {
    stack.model.setHandler((req) => ({ ...scriptedAgent(req), delayMs: 3_000 }) as ReturnType<typeof scriptedAgent>);
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: `${newTag()}\nCALL dyno_run_command {"n":1}` }],
      tools: [STEP],
      max_duration_seconds: 1,
    };
    const stream = follow(await post(stack, body));
    await within(stream.ended, 'the stream to end', 60_000);
    assert.deepEqual(ids(stream.frames), ['0', '1', 'error', 'done']);
    assert.equal(parsed(stream.frames)[1].choices[0].message.content, "Tool 'dyno_run_command' returned result: step 1");
    assert.equal(errorOf(stream.frames).type, 'budget_exceeded');
  });
});
