/**
 * Background runs and webhooks against a real Temporal dev server
 * (docs/api.md#b4-background-runs-and-webhooks): the POST answers 202 with
 * where to follow the run, the run goes on without a client, and its outcome
 * reaches a webhook receiver signed as Standard Webhooks prescribe, verified
 * here with the `standardwebhooks` reference library.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { backgroundAnswer } from '../../api/response-schemas';
import { reply, scriptedAgent } from '../doubles/model-server';
import { newTag } from '../support/runs';
import { getJson, post } from '../support/sse';
import { useStack } from '../support/stack';
import { sleep, until } from '../support/wait';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A webhook receiver that answers 500 to the first `failFirst` deliveries of each webhook-id, 204 after. */
const receiver = { url: '', failFirst: 2, deliveries: [] as Delivery[], server: undefined as http.Server | undefined };
before(async () => {
  receiver.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const earlier = receiver.deliveries.filter((d) => d.headers['webhook-id'] === req.headers['webhook-id']).length;
      const answered = earlier < receiver.failFirst ? 500 : 204;
      receiver.deliveries.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => receiver.server!.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/hooks/agents`;
});
after(async () => {
  receiver.server?.closeAllConnections();
  await new Promise((resolve) => receiver.server?.close(resolve));
});

const webhookEnv = { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_HOSTS: '127.0.0.1' };
const stack = useStack({ apiEnv: webhookEnv, workerEnv: webhookEnv });
beforeEach(() => stack.model.setHandler(scriptedAgent));

const TEST_TIMEOUT = { timeout: 120_000 };
const approvalTool = (runtime: Record<string, unknown>) => ({ type: 'heroku_tool', name: 'html_to_markdown', runtime_params: runtime });
const deliveriesOf = (runId: string) => receiver.deliveries.filter((d) => JSON.parse(d.body).data.id === runId);
const statusOf = async (runId: string) => (await getJson(stack, `/v1/agents/runs/${runId}`)).body;

/** The headers and JSON body of each delivery, verified by the reference implementation (which throws on a bad signature). */
function verified(deliveries: Delivery[]) {
  const wh = new Webhook(SECRET);
  return deliveries.map((d) => {
    wh.verify(d.body, {
      'webhook-id': String(d.headers['webhook-id']),
      'webhook-timestamp': String(d.headers['webhook-timestamp']),
      'webhook-signature': String(d.headers['webhook-signature']),
    });
    return JSON.parse(d.body);
  });
}

describe('background runs', () => {
  test('Prefer: respond-async answers 202; the run finishes alone and its webhook is delivered once despite two failures', TEST_TIMEOUT, async () => {
    const tag = newTag();
    const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: tag }], webhook: receiver.url }, { Prefer: 'respond-async' });
    assert.equal(res.status, 202);
    const answer = await res.json();
    const runId = answer.id as string;
    assert.match(runId, /^chatcmpl-[0-9a-f]{24}$/);
    assert.deepEqual(answer, {
      id: runId,
      status: 'running',
      urls: { status: `/v1/agents/runs/${runId}`, stream: `/v1/agents/runs/${runId}/stream`, cancel: `/v1/agents/runs/${runId}/cancel` },
    });
    backgroundAnswer.parse(answer); // the shape docs/openapi.json documents
    assert.equal(res.headers.get('location'), `/v1/agents/runs/${runId}`);
    assert.equal(res.headers.get('agent-run-id'), runId);
    assert.equal(res.headers.get('preference-applied'), 'respond-async');

    // Polled until it ends: the status gains the final assistant message.
    await until(async () => (await statusOf(runId)).status === 'completed', 'the run to complete', 60_000);
    const status = await statusOf(runId);
    assert.deepEqual(status.message, { role: 'assistant', content: `Echo: ${tag}`, refusal: null });

    // Three attempts (500, 500, 204), then no more: the same id and body each time, each signed anew.
    await until(() => deliveriesOf(runId).length === 3, 'three webhook attempts', 60_000);
    await sleep(5_000);
    const deliveries = deliveriesOf(runId);
    assert.deepEqual(
      deliveries.map((d) => d.answered),
      [500, 500, 204],
    );
    assert.equal(new Set(deliveries.map((d) => d.headers['webhook-id'])).size, 1);
    assert.equal(deliveries[0]!.headers['webhook-id'], `msg_${runId.slice('chatcmpl-'.length)}`);
    assert.equal(new Set(deliveries.map((d) => d.body)).size, 1);
    assert.equal(deliveries[0]!.headers['content-type'], 'application/json');
    const [payload] = verified(deliveries);
    assert.deepEqual(Object.keys(payload).sort(), ['data', 'timestamp', 'type']);
    assert.equal(payload.type, 'run.completed');
    assert.ok(!Number.isNaN(Date.parse(payload.timestamp)));
    assert.deepEqual(payload.data, {
      id: runId,
      status: 'completed',
      model: 'm',
      created: status.created,
      usage: status.usage,
      model_calls: 1,
      tool_calls: {},
      events: 1,
      error: null,
      message: { role: 'assistant', content: `Echo: ${tag}`, refusal: null },
    });
    // A forged signature is refused by the same verifier (positive control of the check above).
    const forged = { ...deliveries[0]!, body: deliveries[0]!.body.replace('run.completed', 'run.failed') };
    assert.throws(() => verified([forged]));
  });

  test('"background": true, then cancel: the run ends cancelled and its webhook says so', TEST_TIMEOUT, async () => {
    stack.model.setHandler(() => reply.hang());
    const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: newTag() }], background: true, webhook: receiver.url });
    assert.equal(res.status, 202);
    const { id: runId } = await res.json();
    await until(() => stack.model.requests.some((r) => String(r.body.messages[0]?.content).length > 0), 'the model call');
    const cancel = await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
    assert.deepEqual(cancel, { status: 202, body: { id: runId, status: 'cancelling' } });
    await until(() => deliveriesOf(runId).some((d) => d.answered === 204), 'the webhook', 60_000);
    const [payload] = verified(deliveriesOf(runId));
    assert.equal(payload.type, 'run.cancelled');
    assert.equal(payload.data.status, 'cancelled');
    assert.deepEqual(payload.data.error, { code: 499, type: 'cancelled', message: 'the run was cancelled' });
    await until(async () => (await statusOf(runId)).status === 'cancelled', 'the run to be cancelled');
  });

  test('the new body and tool fields are validated with Heroku-shaped 400s naming them', TEST_TIMEOUT, async () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
    const cases: [Record<string, unknown>, string][] = [
      [{ background: 'yes' }, 'background must be a boolean'],
      [{ webhook: 42 }, 'webhook must be a string (an http or https URL)'],
      [{ webhook: 'not a url' }, "webhook 'not a url' is not a valid URL"],
      [{ webhook: 'ftp://example.com/x' }, 'webhook must be an http or https URL'],
      [{ webhook: 'http://user:pw@127.0.0.1/x' }, 'webhook must not carry credentials'],
      [
        { webhook: 'http://10.1.2.3/x' },
        'webhook host 10.1.2.3 is a private address; only public addresses may receive webhooks (WEBHOOK_ALLOW_HOSTS lists exceptions)',
      ],
      [{ max_total_tokens: 0 }, 'max_total_tokens must be greater than 0'],
      [{ max_total_tokens: '100' }, 'max_total_tokens must be an integer'],
      [{ max_duration_seconds: 1.5 }, 'max_duration_seconds must be an integer'],
      [{ max_duration_seconds: -1 }, 'max_duration_seconds must be greater than 0'],
      [{ tools: [approvalTool({ requires_approval: 'yes' })] }, 'tools[0].runtime_params.requires_approval must be a boolean'],
      [
        { tools: [approvalTool({ requires_approval: true, approval_timeout_seconds: 0 })] },
        'tools[0].runtime_params.approval_timeout_seconds must be at least 1',
      ],
      [
        { tools: [approvalTool({ requires_approval: true, approval_timeout_seconds: 2.5 })] },
        'tools[0].runtime_params.approval_timeout_seconds must be an integer',
      ],
      [
        { tools: [approvalTool({ requires_approval: true, approval_timeout_seconds: 2_592_001 })] },
        'tools[0].runtime_params.approval_timeout_seconds must be at most 2592000 on this server (MAX_APPROVAL_TIMEOUT_SECONDS)',
      ],
      [{ tools: [approvalTool({ approval_timeout_seconds: 60 })] }, 'tools[0].runtime_params.approval_timeout_seconds needs requires_approval: true'],
    ];
    for (const [extra, message] of cases) {
      const res = await post(stack, { ...base, ...extra });
      assert.deepEqual(
        { status: res.status, body: await res.json() },
        { status: 400, body: { error: { code: 400, type: 'invalid_request_error', message } } },
        JSON.stringify(extra),
      );
    }
  });

  test('without WEBHOOK_SECRET a webhook is a 400 naming it; background runs still work', TEST_TIMEOUT, async () => {
    await stack.api.kill('SIGTERM');
    await stack.api.start({ WEBHOOK_SECRET: '' });
    try {
      const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: 'x' }], webhook: receiver.url });
      assert.deepEqual(await res.json(), {
        error: {
          code: 400,
          type: 'invalid_request_error',
          message: 'webhook cannot be used: this server has no WEBHOOK_SECRET to sign webhooks with',
        },
      });
      const background = await post(stack, { model: 'm', messages: [{ role: 'user', content: 'x' }] }, { Prefer: 'wait=10, respond-async' });
      assert.equal(background.status, 202);
    } finally {
      await stack.api.kill('SIGTERM');
      await stack.api.start();
    }
  });
});
