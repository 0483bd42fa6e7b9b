/**
 * Temporal's SDK logs through our log (common/log.ts): its worker, workflow
 * and activity loggers and, forwarded, the Rust core's. Its fields are put
 * into our shape on the way:
 *
 * - `runId` is ours (`chatcmpl-…`, derived from the workflow id); Temporal's
 *   own run id of an execution is `temporalRunId`.
 * - Task tokens (opaque, long, and useless without the server's database) are
 *   on debug lines only.
 * - The bundler's multi-line build report is a debug line.
 */
import {
  DefaultLogger,
  makeTelemetryFilterString,
  Runtime,
  type LogEntry,
  type LogLevel,
  type LogMetadata,
  type MetricsExporterConfig,
} from '@temporalio/worker';
import type { Log, LogFields, LogLevelName } from '../common/log';
import { runIdForWorkflow } from '../common/run-ids';

const SDK_LEVEL: Record<LogLevelName, LogLevel> = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };

/** Installs the SDK's runtime with our log; once per process, before any connection to Temporal. */
export function installRuntime(
  log: Log,
  level: LogLevelName,
  { metrics, ...options }: { shutdownSignals?: NodeJS.Signals[]; metrics?: MetricsExporterConfig } = {},
): void {
  Runtime.install({
    ...options,
    // Every line reaches our log, which applies LOG_LEVEL.
    logger: new DefaultLogger('TRACE', (entry) => toOurLog(log, entry)),
    // Core's own lines at our level; those of the libraries it uses only from WARN.
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: SDK_LEVEL[level], other: 'WARN' }) }, metrics },
  });
}

function toOurLog(log: Log, { level, message, meta = {} }: LogEntry): void {
  const effective = level === 'INFO' && message.includes('\n') ? 'DEBUG' : level;
  log.log(effective, message, sdkFields(effective, meta));
}

/** The SDK's fields of a line, in our shape. */
export function sdkFields(level: LogLevel, meta: LogMetadata): LogFields {
  // Workflow lines name Temporal's run id `runId`, activity lines `workflowRunId`.
  const { taskToken, runId: temporalRunId, workflowRunId, ...rest } = meta;
  const fields: LogFields = { ...rest };
  if (typeof rest.workflowId === 'string' && rest.workflowId.startsWith('agent-run-')) fields.runId = runIdForWorkflow(rest.workflowId);
  if (workflowRunId ?? temporalRunId) fields.temporalRunId = workflowRunId ?? temporalRunId;
  if (taskToken !== undefined && (level === 'DEBUG' || level === 'TRACE')) fields.taskToken = taskToken;
  return fields;
}
