import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { McpPool } from '../activities/mcp/pool';
import type { TemporalConfig, WorkerConfig } from '../common/config';
import { dataConverter } from '../common/payload-store';
import { TASK_QUEUE } from '../common/run-contract';

/** How long running activities get to finish after SIGTERM before they are cancelled. */
export const SHUTDOWN_GRACE = '30 seconds';

export interface AgentWorker {
  worker: Worker;
  /** Polls until the worker has shut down, then closes the MCP connections. */
  run(): Promise<void>;
}

export async function createAgentWorker(temporal: TemporalConfig, config: WorkerConfig): Promise<AgentWorker> {
  const mcp = McpPool.fromFile(config.mcpServersFile, Runtime.instance().logger);
  // Connected early to surface problems in the log; calls do not wait for it (they connect on demand).
  void mcp.syncAll();
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  const worker = await Worker.create({
    connection,
    namespace: temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities(config, mcp),
    dataConverter: dataConverter(config.env),
    shutdownGraceTime: SHUTDOWN_GRACE,
    // Cancellation reaches an activity only with a heartbeat's answer: send them often enough
    // that a cancelled run stops its model call or dyno within seconds.
    maxHeartbeatThrottleInterval: '1 second',
  });
  return { worker, run: () => worker.run().finally(() => mcp.close()) };
}
