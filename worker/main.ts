/** `npm run worker`: one worker process against any Temporal service (scale out by running more). */
import { temporalConfig, workerConfig } from '../common/config';
import { createAgentWorker } from './worker';

async function main() {
  const agent = await createAgentWorker(temporalConfig(), workerConfig());
  console.log(`worker: polling task queues ${agent.worker.options.taskQueue} and ${agent.tools.options.taskQueue}`);
  // The SDK's runtime turns SIGINT/SIGTERM into a graceful shutdown (SHUTDOWN_GRACE).
  await agent.run();
}

main().catch((err) => {
  console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
