import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TemporalConfig, WorkerConfig } from '../common/config';
import { dataConverter } from '../common/payload-store';
import { TASK_QUEUE } from '../contract/run-contract';
import { McpPool } from '../mcp/pool';
import { createRunners } from '../runners/registry';
import { CommandRuntime } from '../runtimes/command-runtime';

/** How long running activities get to finish after SIGTERM before they are cancelled. */
export const SHUTDOWN_GRACE = '30 seconds';

export interface AgentWorker {
  worker: Worker;
  /** Polls until the worker has shut down, then closes the MCP connections. */
  run(): Promise<void>;
}

export async function createAgentWorker(temporal: TemporalConfig, config: WorkerConfig): Promise<AgentWorker> {
  const log = Runtime.instance().logger;
  if (config.sandbox.mode === 'none') {
    log.warn('TOOL_SANDBOX=none: commands and code of tools run on the worker host WITHOUT a sandbox (no isolation of files, network or processes)');
  }
  const mcp = McpPool.fromFile(config.mcpServersFile, log);
  // Connected early to surface problems in the log; calls do not wait for it (they connect on demand).
  void mcp.syncAll();
  const runners = createRunners({
    commands: new CommandRuntime(config.sandbox, config.heroku),
    databaseUrl: config.databaseUrl,
    fetchAllowHosts: config.fetchAllowHosts,
    mcp,
  });
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  const worker = await Worker.create({
    connection,
    namespace: temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities(config, runners),
    dataConverter: dataConverter(config.payloadStoreDir),
    shutdownGraceTime: SHUTDOWN_GRACE,
    // Cancellation reaches an activity only with a heartbeat's answer (activities/heartbeat.ts
    // sends one every second): let each through, so a cancelled run stops its work within seconds.
    maxHeartbeatThrottleInterval: '1 second',
  });
  return { worker, run: () => worker.run().finally(() => mcp.close()) };
}
