/** `npm run worker`: one worker process against any Temporal service (scale out by running more). */
import { temporalConfig, workerConfig } from '../common/config';
import { createLog, logLevel } from '../common/log';
import { installRuntime } from './runtime';
import { sdkMetricsTelemetry } from './metrics';
import { createAgentWorker } from './worker';

const log = createLog('worker');

async function main() {
  const level = logLevel();
  log.setLevel(level);
  const config = workerConfig();
  // The SDK's runtime turns SIGINT/SIGTERM into a graceful shutdown (SHUTDOWN_GRACE).
  // Its own metrics join /metrics only where there is one to serve them.
  installRuntime(log, level, { metrics: config.metricsPort === undefined ? undefined : await sdkMetricsTelemetry() });
  const agent = await createAgentWorker(temporalConfig(), config, log);
  const taskQueues = [agent.worker.options.taskQueue, agent.tools.options.taskQueue];
  log.info(`polling task queues ${taskQueues.join(' and ')}`, { taskQueues });
  await agent.run();
}

main().catch((err: unknown) => {
  log.error(`cannot run: ${err instanceof Error ? err.message : String(err)}`, { err });
  process.exit(1);
});
