import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TemporalConfig, WorkerConfig } from '../common/config';
import { TASK_QUEUE } from '../common/run-contract';

/** How long running activities get to finish after SIGTERM before they are cancelled. */
export const SHUTDOWN_GRACE = '30 seconds';

export async function createAgentWorker(temporal: TemporalConfig, config: WorkerConfig): Promise<Worker> {
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  return Worker.create({
    connection,
    namespace: temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities(config),
    shutdownGraceTime: SHUTDOWN_GRACE,
    // Cancellation reaches an activity only with a heartbeat's answer: send them often enough
    // that a cancelled run stops its model call or dyno within seconds.
    maxHeartbeatThrottleInterval: '1 second',
  });
}
