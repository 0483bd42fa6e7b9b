import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TemporalConfig, WorkerConfig } from '../common/config';
import type { Log } from '../common/log';
import { dataConverter } from '../common/payload-store';
import { TASK_QUEUE, TOOL_TASK_QUEUE } from '../contract/run-contract';
import { processTracing } from '../common/tracing';
import { McpPool } from '../mcp/pool';
import { createRunners } from '../runners/registry';
import { CommandRuntime } from '../runtimes/command-runtime';
import { LocalSandbox } from '../runtimes/sandbox/local-sandbox';
import { DocumentConverter } from '../runtimes/documents/converter';
import { ReadOnlyDatabases } from '../runtimes/postgres/session';
import { postWebhook } from '../runtimes/web/webhook-post';
import { checkModelApi } from './startup-checks';
import { toolCallLogAttributes } from './tool-call-log';
import { buildWorkflowBundle } from './workflow-bundle';
import { metricsActivityInterceptor, serveMetrics } from './metrics';

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
  /**
   * Polls until both workers have shut down, then closes the MCP connections, removes the
   * sandbox's cgroups, ends the document converters and closes the database pools and the
   * connection to Temporal.
   */
  run(): Promise<void>;
  /** Lets running activities finish (SHUTDOWN_GRACE), then stops both. */
  shutdown(): void;
}

/** The worker, once its start-up checks have been logged (the Runtime must be installed: ./runtime.ts). */
export async function createAgentWorker(temporal: TemporalConfig, config: WorkerConfig, log: Log): Promise<AgentWorker> {
  // Logs what the sandbox lacks (or that it is turned off); its calls then say so too.
  const sandbox = await LocalSandbox.open(config.sandbox, log);
  await checkModelApi(config.inference, log);
  const mcp = McpPool.fromFile(config.mcpServersFile, log);
  // Connected early to surface problems in the log; calls do not wait for it (they connect on demand).
  void mcp.syncAll();
  const converter = new DocumentConverter(config.converter);
  const databases = new ReadOnlyDatabases(config.postgres);
  const runners = createRunners({
    commands: new CommandRuntime(sandbox, config.heroku),
    databases,
    fetchAllowHosts: config.fetchAllowHosts,
    web: config.web,
    converter,
    mcp,
  });
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  const tracing = await processTracing(config.tracing);
  // Tracing: the workflow interceptors (in the bundle), activity interceptors and the span sink (common/tracing.ts).
  const plugins = tracing ? [tracing.plugin] : [];
  const common = {
    connection,
    namespace: temporal.namespace,
    // Both queues know both activities: runs started before TOOL_TASK_QUEUE schedule tools on TASK_QUEUE.
    activities: createActivities(config, runners, (url, body, headers, signal) =>
      postWebhook(url, body, headers, { allowHosts: config.webhooks.allowHosts, signal }),
    ),
    dataConverter: dataConverter(config.payloadStoreDir),
    shutdownGraceTime: SHUTDOWN_GRACE,
    interceptors: { activity: [toolCallLogAttributes, metricsActivityInterceptor] },
    plugins,
  };
  const worker = await Worker.create({
    ...common,
    ...workerTuning(config.modelCallSlots),
    taskQueue: TASK_QUEUE,
    workflowBundle: await buildWorkflowBundle(require.resolve('../workflows'), { plugins, log }),
  });
  const tools = await Worker.create({ ...common, ...workerTuning(config.toolCallSlots), taskQueue: TOOL_TASK_QUEUE });
  const metricsServer = config.metricsPort === undefined ? undefined : await serveMetrics(config.metricsPort, config.metricsToken);
  return {
    worker,
    tools,
    run: () =>
      Promise.all([worker.run(), tools.run()])
        .then(() => undefined)
        .finally(async () => {
          metricsServer?.close();
          await tracing?.flush();
          await sandbox.close();
          // The connection too: while it is open the SDK's runtime (and its log forwarding) keeps the process alive after SIGTERM.
          await Promise.all([mcp.close(), converter.close(), databases.close(), connection.close()]);
        }),
    shutdown: () => {
      worker.shutdown();
      tools.shutdown();
    },
  };
}
