/**
 * The worker's metrics (names in docs/api.md#metrics): the duration and
 * outcome of every model and tool call, measured by an activity interceptor
 * around the activities, and the Temporal SDK's own metrics (workflow and
 * activity tasks, pollers, slots, ...), which its Rust core exports on a
 * loopback port and /metrics appends. With METRICS_PORT a small HTTP
 * listener serves them; under `npm start` the API's /metrics does.
 */
import * as http from 'node:http';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, MetricsExporterConfig } from '@temporalio/worker';
import { Histogram } from 'prom-client';
import { freePort } from '../common/free-port';
import { addMetricsSource, metricsHandler, metricsRegistry } from '../common/metrics';
import { UPSTREAM_ERROR } from '../contract/run-contract';

const registers = [metricsRegistry];

const modelCalls = new Histogram({
  name: 'agents_model_call_duration_seconds',
  help: 'Model calls (one attempt each), by outcome: ok, upstream_error (the model API answered with an error or not at all), cancelled, failed',
  labelNames: ['outcome'] as const,
  buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers,
});

const toolCalls = new Histogram({
  name: 'agents_tool_call_duration_seconds',
  help: 'Tool calls (one attempt each), by tool and outcome: ok (the tool answered, possibly with an error the model reads), cancelled, failed',
  labelNames: ['tool', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers,
});

function outcomeOf(err: unknown, signal: AbortSignal): string {
  if (signal.aborted || err instanceof CancelledFailure) return 'cancelled';
  if (err instanceof ApplicationFailure && err.type === UPSTREAM_ERROR) return 'upstream_error';
  return 'failed';
}

/** The tool a runTool call runs (its input is a ToolCallInput). */
function toolName(args: readonly unknown[]): string {
  const [input] = args as [{ tool?: { name?: unknown } } | undefined];
  return typeof input?.tool?.name === 'string' ? input.tool.name : 'unknown';
}

/** Times each activity attempt and records how it ended. */
export const metricsActivityInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const type = ctx.info.activityType;
      const observe =
        type === 'runTool' ? toolCalls.startTimer({ tool: toolName(input.args) }) : type === 'callModel' ? modelCalls.startTimer() : undefined;
      try {
        const result = await next(input);
        observe?.({ outcome: 'ok' });
        return result;
      } catch (err) {
        observe?.({ outcome: outcomeOf(err, ctx.cancellationSignal) });
        throw err;
      }
    },
  },
});

/**
 * The SDK's metrics, for Runtime.install(): exported by its core on a free
 * loopback port and appended to this process's /metrics. Call before the
 * runtime is installed, once per process.
 */
export async function sdkMetricsTelemetry(): Promise<MetricsExporterConfig> {
  const bindAddress = `127.0.0.1:${await freePort()}`;
  addMetricsSource(() =>
    fetch(`http://${bindAddress}/metrics`, { signal: AbortSignal.timeout(5_000) }).then(
      (res) => res.text(),
      (err: unknown) => `# the Temporal SDK's metrics are unavailable: ${err instanceof Error ? err.message : String(err)}\n`,
    ),
  );
  return { prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } };
}

/** The worker's own /metrics listener (METRICS_PORT); any other path is a 404. */
export async function serveMetrics(port: number, token: string | undefined): Promise<http.Server> {
  const handle = metricsHandler(token);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && new URL(req.url ?? '/', 'http://x').pathname === '/metrics') return handle(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only GET /metrics is served here\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  return server;
}
