/**
 * The engine floor's worker, a process of its own like durable-agents'
 * worker: the floor workflow and a no-op activity on the floor's task queue.
 * Started by ./floor.ts with TEMPORAL_ADDRESS, the task queue and the worker
 * tuning (JSON) in its environment; prints `floor worker: polling` when ready.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { buildWorkflowBundle } from '../../worker/workflow-bundle';

async function main() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue: process.env.FLOOR_TASK_QUEUE!,
    // Bundled apart, as durable-agents' worker does: webpack's memory does not stay in the worker.
    workflowBundle: await buildWorkflowBundle(require.resolve('./workflow')),
    activities: {
      noop: async (delayMs = 0) => {
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      },
    },
    ...(JSON.parse(process.env.FLOOR_WORKER_OPTIONS ?? '{}') as Record<string, unknown>),
  });
  console.log('floor worker: polling');
  await worker.run();
}

main().catch((err) => {
  console.error(`floor worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
