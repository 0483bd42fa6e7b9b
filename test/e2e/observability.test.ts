/**
 * What an operator scrapes and reads: the API's and the worker's /metrics
 * (exact increments after runs that complete, fail and are cancelled; the
 * Temporal SDK's own metrics beside ours; METRICS_TOKEN), and the OpenAPI
 * document, against which the service's real answers are checked.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { freePort } from '../../common/free-port';
import {
  cancelAnswer,
  chatCompletionEvent,
  errorBody,
  health,
  mcpServer,
  publicHealth,
  runList,
  runView,
  toolCompletionEvent,
} from '../../api/response-schemas';
import { reply, scriptedAgent } from '../doubles/model-server';
import { getJson, post, readStream, resume, runAgent } from '../support/sse';
import { scrape, sum, type Sample } from '../support/prometheus';
import { useStack } from '../support/stack';
import { until, within } from '../support/wait';

const METRICS_TOKEN = `metrics-token-${Math.random().toString(36).slice(2)}`;
let workerMetricsPort = 0;
const stack = useStack(async () => {
  workerMetricsPort = await freePort();
  return {
    apiEnv: { METRICS_TOKEN },
    workerEnv: { METRICS_PORT: String(workerMetricsPort), METRICS_TOKEN },
  };
});

const auth = { Authorization: `Bearer ${METRICS_TOKEN}` };
const apiMetrics = () => scrape(`${stack.apiUrl}/metrics`, auth);
const workerMetrics = () => scrape(`http://127.0.0.1:${workerMetricsPort}/metrics`, auth);

/** How much each named sample moved between two scrapes. */
const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}) =>
  sum(after, name, labels) - sum(before, name, labels);

const dynoTool = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo hello', description: 'Says hello' } },
};
const withTool = (content: string) => ({ model: 'claude-4-sonnet', messages: [{ role: 'user', content }], tools: [dynoTool] });

describe('/metrics', () => {
  test('want METRICS_TOKEN when it is set, on the API and on the worker', async () => {
    for (const url of [`${stack.apiUrl}/metrics`, `http://127.0.0.1:${workerMetricsPort}/metrics`]) {
      const attempts: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Bearer ${stack.apiKey}` }];
      for (const headers of attempts) {
        const res = await fetch(url, { headers });
        assert.equal(res.status, 401, `${url} with ${JSON.stringify(headers)}`);
        assert.deepEqual(await res.json(), {
          error: { code: 401, message: 'metrics need Authorization: Bearer <METRICS_TOKEN>', type: 'authentication_error' },
        });
      }
    }
    assert.equal((await fetch(`http://127.0.0.1:${workerMetricsPort}/other`)).status, 404);
  });

  test('count a completed run with a tool call: requests, runs, streams and polls on the API; model and tool calls and the SDK on the worker', async () => {
    const [api0, worker0] = await Promise.all([apiMetrics(), workerMetrics()]);
    const run = await runAgent(stack, withTool('CALL dyno_run_command {}'));
    assert.equal(run.messages.length, 3);
    const runId = run.headers.get('agent-run-id')!;
    assert.equal((await getJson(stack, `/v1/agents/runs/${runId}`)).status, 200);
    assert.equal((await fetch(`${stack.apiUrl}/no/such/path`)).status, 404);
    // The stream's connection has closed once the client read it to the end; 'close' may trail by a tick.
    await until(
      async () =>
        sum(await apiMetrics(), 'agents_http_requests_total', { route: '/v1/agents/heroku' }) >
        sum(api0, 'agents_http_requests_total', { route: '/v1/agents/heroku' }),
      'the POST to be counted',
    );

    const api1 = await apiMetrics();
    assert.equal(delta(api0, api1, 'agents_http_requests_total', { method: 'POST', route: '/v1/agents/heroku', status: '200' }), 1);
    assert.equal(delta(api0, api1, 'agents_http_requests_total', { method: 'GET', route: '/v1/agents/runs/{id}', status: '200' }), 1);
    assert.equal(delta(api0, api1, 'agents_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.equal(delta(api0, api1, 'agents_runs_started_total'), 1);
    assert.equal(delta(api0, api1, 'agents_runs_ended_total', { status: 'completed' }), 1);
    assert.equal(delta(api0, api1, 'agents_runs_ended_total'), 1);
    assert.equal(sum(api1, 'agents_sse_connections'), 0);
    // At least one long-poll per event batch; none failed.
    assert.ok(delta(api0, api1, 'agents_stream_polls_total', { kind: 'update', outcome: 'ok' }) >= 1);
    assert.ok(sum(api1, 'process_resident_memory_bytes') > 0, 'Node process metrics');

    const worker1 = await workerMetrics();
    assert.equal(delta(worker0, worker1, 'agents_model_call_duration_seconds_count', { outcome: 'ok' }), 2);
    assert.equal(delta(worker0, worker1, 'agents_model_call_duration_seconds_count'), 2);
    assert.equal(delta(worker0, worker1, 'agents_tool_call_duration_seconds_count', { tool: 'dyno_run_command', outcome: 'ok' }), 1);
    assert.equal(delta(worker0, worker1, 'agents_tool_call_duration_seconds_count'), 1);
    assert.ok(delta(worker0, worker1, 'agents_tool_call_duration_seconds_sum', { tool: 'dyno_run_command' }) > 0);
    // The SDK's own, from its core's exporter.
    assert.equal(delta(worker0, worker1, 'temporal_workflow_completed_total', { workflow_type: 'agentRun' }), 1);
    assert.ok(delta(worker0, worker1, 'temporal_activity_execution_latency_seconds_count', { activity_type: 'runTool' }) >= 1);

    // Replaying the finished run reads it with a query: no new end.
    const replay = await resume(stack, runId);
    assert.equal(replay.messages.length, 3);
    const api2 = await apiMetrics();
    assert.equal(delta(api1, api2, 'agents_runs_ended_total'), 0);
    assert.ok(delta(api1, api2, 'agents_stream_polls_total', { kind: 'query', outcome: 'ok' }) >= 1);
  });

  test('count a run the upstream refuses as failed, and its model call as upstream_error', async () => {
    const [api0, worker0] = await Promise.all([apiMetrics(), workerMetrics()]);
    stack.model.setHandler(() => reply.error(400));
    try {
      const run = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'refuse me' }] });
      assert.equal(run.frames.at(-2)?.event, 'error');
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
    await until(async () => delta(api0, await apiMetrics(), 'agents_runs_ended_total') === 1, 'the run end to be counted');
    const [api1, worker1] = await Promise.all([apiMetrics(), workerMetrics()]);
    assert.equal(delta(api0, api1, 'agents_runs_ended_total', { status: 'failed' }), 1);
    assert.equal(delta(worker0, worker1, 'agents_model_call_duration_seconds_count', { outcome: 'upstream_error' }), 1);
    assert.equal(delta(worker0, worker1, 'agents_model_call_duration_seconds_count'), 1);
  });

  test('count an open stream while it is open, and a cancelled run and its model call', async () => {
    const [api0, worker0] = await Promise.all([apiMetrics(), workerMetrics()]);
    stack.model.setHandler(() => reply.hang());
    try {
      const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: 'hang' }] });
      const runId = res.headers.get('agent-run-id')!;
      const reading = readStream(res);
      await until(() => stack.model.requests.some((r) => r.body.messages.at(-1).content === 'hang'), 'the model call to hang');
      assert.equal(sum(await apiMetrics(), 'agents_sse_connections') - sum(api0, 'agents_sse_connections'), 1);
      await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' });
      await within(reading, 'the cancelled stream to end', 30_000);
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
    await until(async () => delta(worker0, await workerMetrics(), 'agents_model_call_duration_seconds_count') === 1, 'the model call to be counted');
    await until(
      async () => sum(await apiMetrics(), 'agents_sse_connections') === sum(api0, 'agents_sse_connections'),
      'the stream to be counted closed',
    );
    const [api1, worker1] = await Promise.all([apiMetrics(), workerMetrics()]);
    assert.equal(delta(api0, api1, 'agents_runs_ended_total', { status: 'cancelled' }), 1);
    assert.equal(delta(api0, api1, 'agents_http_requests_total', { method: 'POST', route: '/v1/agents/runs/{id}/cancel', status: '202' }), 1);
    assert.equal(delta(worker0, worker1, 'agents_model_call_duration_seconds_count', { outcome: 'cancelled' }), 1);
  });
});

describe('the OpenAPI document', () => {
  let served: any;
  before(async () => {
    const res = await fetch(`${stack.apiUrl}/openapi.json`);
    assert.equal(res.status, 200);
    served = await res.json();
  });

  test('is served without a key, and is the one checked in under docs/', () => {
    const checkedIn = JSON.parse(fs.readFileSync(path.join(__dirname, '../../docs/openapi.json'), 'utf8'));
    assert.equal(served.openapi, '3.1.0');
    assert.deepEqual(served, checkedIn);
  });

  test('describes every answer the service gives: events, run views, lists, cancels, health, MCP servers, errors', async () => {
    const run = await runAgent(stack, withTool('CALL dyno_run_command {"a":1}'));
    const [first, tool, last] = run.messages;
    chatCompletionEvent.parse(first);
    toolCompletionEvent.parse(tool);
    chatCompletionEvent.parse(last);
    assert.ok(first.choices[0].message.tool_calls, 'the first event carries tool calls');
    const runId = run.headers.get('agent-run-id')!;

    runView.parse((await getJson(stack, `/v1/agents/runs/${runId}`)).body);
    runList.parse((await getJson(stack, '/v1/agents/runs?limit=5')).body);
    cancelAnswer.parse((await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' })).body);
    const mcp = await getJson(stack, '/v1/mcp/servers');
    for (const server of mcp.body) mcpServer.parse(server);
    health.parse(await (await fetch(`${stack.apiUrl}/healthz`, { headers: { Authorization: `Bearer ${stack.apiKey}` } })).json());
    publicHealth.parse(await (await fetch(`${stack.apiUrl}/healthz`)).json());

    const errors = [
      await getJson(stack, '/v1/agents/runs', { headers: { Authorization: 'Bearer wrong' } }),
      await getJson(stack, '/v1/agents/runs?limit=0'),
      await getJson(stack, '/v1/agents/runs/chatcmpl-000000000000000000000000'),
      { status: 400, body: await (await post(stack, { model: 'm', messages: [] })).json() },
    ];
    assert.deepEqual(
      errors.map((e) => e.status),
      [401, 400, 404, 400],
    );
    for (const e of errors) errorBody.parse(e.body);
    assert.equal(errors[1]!.body.error.message, 'limit must be an integer between 1 and 100');

    // Every documented status of these answers is one the document lists for the path.
    assert.ok(served.paths['/v1/agents/runs'].get.responses['400']);
    assert.ok(served.paths['/v1/agents/runs/{id}'].get.responses['404']);
    assert.ok(served.paths['/v1/agents/heroku'].post.responses['400']);
  });

  test('an error of the stream is an Error too', async () => {
    stack.model.setHandler(() => reply.error(400));
    try {
      const run = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: 'x' }] });
      const error = run.frames.find((f) => f.event === 'error')!;
      errorBody.parse(JSON.parse(error.data));
    } finally {
      stack.model.setHandler(scriptedAgent);
    }
  });
});
