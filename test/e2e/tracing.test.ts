/**
 * Traces: with OTEL_EXPORTER_OTLP_ENDPOINT set on the API and the worker, a
 * run's spans reach an OTLP/HTTP receiver (this test's, speaking the JSON the
 * exporter sends) in one trace that continues the caller's `traceparent`:
 * HTTP request -> the run's start -> the workflow -> each model and tool call.
 * Log lines written inside a traced activity carry its trace and span ids;
 * no secret or prompt is in a span.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { runAgent } from '../support/sse';
import { useStack } from '../support/stack';
import { until } from '../support/wait';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
}

/** An OTLP/HTTP trace receiver: what the exporter posts to /v1/traces, as JSON. */
async function startOtlpReceiver() {
  const spans: Span[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.equal(req.headers['content-type'], 'application/json');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue;
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { spans, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
const stack = useStack(async () => {
  receiver = await startOtlpReceiver();
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url };
  return { apiEnv: { ...otel, OTEL_SERVICE_NAME: 'agents-api' }, workerEnv: { ...otel, OTEL_SERVICE_NAME: 'agents-worker' } };
});
after(() => receiver.close());

const dynoTool = {
  type: 'heroku_tool',
  name: 'dyno_run_command',
  runtime_params: { target_app_name: 'my-app', tool_params: { cmd: 'echo hello', description: 'Says hello' } },
};

test("a run's spans form one chain from the caller's HTTP request to each model and tool call", async () => {
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  const run = await runAgent(
    stack,
    { model: 'm', messages: [{ role: 'user', content: 'CALL dyno_run_command {}' }], tools: [dynoTool] },
    { traceparent: `00-${traceId}-${callerSpan}-01` },
  );
  assert.equal(run.messages.length, 3);

  const ofTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
  const named = (name: string) => ofTrace().filter((s) => s.name === name);
  // The batch processors send every 5 s; the API's request span ends when the stream's connection closes.
  await until(
    () => named('RunActivity:runTool').length === 1 && named('RunActivity:callModel').length === 2 && named('POST /v1/agents/heroku').length === 1,
    'the spans of the run to arrive',
    60_000,
  );
  const byId = new Map(ofTrace().map((s) => [s.spanId, s]));
  /** The names from a span up to the caller's, through parentSpanId. */
  const chain = (span: Span): string[] => {
    const names = [`${span.name} (${span.service})`];
    for (let p = span.parentSpanId; p; p = byId.get(p)?.parentSpanId)
      names.push(p === callerSpan ? 'caller' : `${byId.get(p)?.name ?? `missing ${p}`} (${byId.get(p)?.service})`);
    return names;
  };
  const request = ['POST /v1/agents/heroku (agents-api)', 'caller'];
  const workflow = ['RunWorkflow:agentRun (agents-worker)', 'UpdateWithStartWorkflow:waitForEvents (agents-api)', ...request];
  assert.deepEqual(chain(named('RunActivity:runTool')[0]!), [
    'RunActivity:runTool (agents-worker)',
    'StartActivity:runTool (agents-worker)',
    ...workflow,
  ]);
  for (const call of named('RunActivity:callModel')) {
    assert.deepEqual(chain(call), ['RunActivity:callModel (agents-worker)', 'StartActivity:callModel (agents-worker)', ...workflow]);
  }

  // The activity's own log line carries the trace and the span it ran in.
  const runTool = named('RunActivity:runTool')[0]!;
  const lines = stack.worker.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const toolLine = lines.find((l) => l.msg === 'running tool dyno_run_command' && l.trace_id === traceId);
  assert.ok(toolLine, "the tool call's log line carries the trace id");
  assert.equal(toolLine.span_id, runTool.spanId);
  // Spans hold names, ids and routes: no key, token or prompt.
  const exported = JSON.stringify(receiver.spans);
  for (const secret of stack.secrets) assert.ok(!exported.includes(secret), 'a secret is in the spans');
  assert.ok(!exported.includes('CALL dyno_run_command'), 'the prompt is in the spans');
  // Lines outside any span carry none.
  assert.ok(lines.some((l) => /polling task queues/.test(l.msg) && l.trace_id === undefined));
});
