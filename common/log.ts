/**
 * One log format for every process (the API, the worker, `npm start`): JSON
 * lines on stdout, written by pino, one object per line. Temporal's SDK logs
 * through the same logger (worker/runtime.ts). Lines about a run carry the
 * same fields wherever they come from: `runId` (`chatcmpl-…`, the client's id),
 * `workflowId` (`agent-run-…`) and, for a tool call, `toolCallId` (its
 * TOOL_CALL_ID). Lines logged inside a traced request or activity carry its
 * `trace_id` and `span_id`.
 *
 * Secrets are never handed to the log; fields that hold credentials by name
 * are redacted all the same, as a second line of defence.
 */
import pino from 'pino';
import { trace } from '@opentelemetry/api';
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { oneOf, type Env } from './env';
import { workflowIdFor } from './run-ids';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

/** Temporal's Logger shape (message first, then fields), so our code and the SDK log alike. */
export interface Log {
  log(level: LogLevel, message: string, meta?: LogMetadata): void;
  trace(message: string, meta?: LogMetadata): void;
  debug(message: string, meta?: LogMetadata): void;
  info(message: string, meta?: LogMetadata): void;
  warn(message: string, meta?: LogMetadata): void;
  error(message: string, meta?: LogMetadata): void;
  child(fields: LogFields): Log;
  /** Whether lines of `level` are written. */
  enabled(level: LogLevelName): boolean;
  setLevel(level: LogLevelName): void;
}

/** LOG_LEVEL: the lowest level written (info). */
export function logLevel(env: Env = process.env): LogLevelName {
  return oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info');
}

/** The fields that name a run on every line about it. */
export function runFields(runId: string): LogFields {
  return { runId, workflowId: workflowIdFor(runId) };
}

/**
 * The trace of the span active where a line is logged (OpenTelemetry's log
 * field names), so a line can be found from its trace and back. Without
 * tracing (common/tracing.ts) no span is ever active and nothing is added.
 */
function traceFields(): LogFields {
  const span = trace.getActiveSpan()?.spanContext();
  return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
}

const CREDENTIAL_FIELDS = ['authorization', 'apiKey', 'password', 'token', 'headers', 'env'];

const PINO_LEVEL: Record<LogLevel, LogLevelName> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

class PinoLog implements Log {
  constructor(private readonly logger: pino.Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.logger[PINO_LEVEL[level]](meta ?? {}, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
  child(fields: LogFields): Log {
    return new PinoLog(this.logger.child(fields));
  }
  enabled(level: LogLevelName): boolean {
    return this.logger.isLevelEnabled(level);
  }
  setLevel(level: LogLevelName): void {
    this.logger.level = level;
  }
}

/**
 * The log of one process, named `name` on every line; at info until
 * setLevel() (a process reads LOG_LEVEL with its other settings, and a bad
 * value is itself logged).
 */
export function createLog(name: string): Log {
  return new PinoLog(
    pino(
      {
        name,
        level: 'info',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        mixin: traceFields,
        serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
        redact: { paths: CREDENTIAL_FIELDS.flatMap((field) => [field, `*.${field}`]), censor: '[redacted]' },
      },
      // Synchronous: a line is out before the process exits, in the order it was logged.
      pino.destination({ dest: 1, sync: true }),
    ),
  );
}
