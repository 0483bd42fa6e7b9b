import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TemporalConfig, WorkerConfig } from '../common/config';
import { dataConverter } from '../common/payload-store';
import { TASK_QUEUE, TOOL_TASK_QUEUE } from '../contract/run-contract';
import { McpPool } from '../mcp/pool';
import { createRunners } from '../runners/registry';
import { CommandRuntime } from '../runtimes/command-runtime';

/** How long running activities get to finish after SIGTERM before they are cancelled. */
export const SHUTDOWN_GRACE = '30 seconds';

/**
 * The options that size a worker, apart from its task queue: model calls on
 * TASK_QUEUE (with the workflows), tool calls on TOOL_TASK_QUEUE, each with
 * its own number of slots. The bench's engine floor runs on the same.
 */
export function workerTuning(slots: number) {
  return {
    maxConcurrentActivityTaskExecutions: slots,
    // Cancellation reaches an activity only with a heartbeat's answer (activities/heartbeat.ts
    // sends one every second): let each through, so a cancelled run stops its work within seconds.
    maxHeartbeatThrottleInterval: '1 second',
  } as const;
}

export interface AgentWorker {
  /** Workflows and model calls (TASK_QUEUE). */
  worker: Worker;
  /** Tool calls (TOOL_TASK_QUEUE). */
  tools: Worker;
  /** Polls until both workers have shut down, then closes the MCP connections. */
  run(): Promise<void>;
  /** Lets running activities finish (SHUTDOWN_GRACE), then stops both. */
  shutdown(): void;
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
  const common = {
    connection,
    namespace: temporal.namespace,
    // Both queues know both activities: runs started before TOOL_TASK_QUEUE schedule tools on TASK_QUEUE.
    activities: createActivities(config, runners),
    dataConverter: dataConverter(config.payloadStoreDir),
    shutdownGraceTime: SHUTDOWN_GRACE,
  };
  const worker = await Worker.create({
    ...common,
    ...workerTuning(config.modelCallSlots),
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
  });
  const tools = await Worker.create({ ...common, ...workerTuning(config.toolCallSlots), taskQueue: TOOL_TASK_QUEUE });
  return {
    worker,
    tools,
    run: () =>
      Promise.all([worker.run(), tools.run()])
        .then(() => undefined)
        .finally(() => mcp.close()),
    shutdown: () => {
      worker.shutdown();
      tools.shutdown();
    },
  };
}
