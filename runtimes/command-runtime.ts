/**
 * Where commands and code run (docs/api.md#part-c-configuration): a one-off
 * dyno of the tool's app when the worker has a Heroku API key and the tool
 * names an app, else the worker's local sandbox (./sandbox; TOOL_SANDBOX=none
 * runs without one). The runners of dyno_run_command and code_exec_* get one
 * CommandRuntime: the Heroku token and the worker's sandbox, nothing else of
 * the worker's.
 */
import type { ToolRunContext } from '../tool-call/context';
import { MAX_OUTPUT_BYTES } from '../tool-call/output-cap';
import { ToolError } from '../tool-call/tool-error';
import { PlatformError, runOneOffDyno, type PlatformConfig } from './heroku/one-off-dyno';
import {
  SandboxQueueTimeoutError,
  SandboxUnavailableError,
  type LocalSandbox,
  type SandboxRequest,
  type SandboxResult,
} from './sandbox/local-sandbox';

export interface CommandOutcome {
  /** stdout and stderr as one stream, in the order the process wrote them. */
  output: string;
  exitStatus: number | null;
  timedOut: boolean;
  truncated: boolean;
  /** The sandbox's notes for the model: limits the call ran into, its wait for a slot. */
  notes?: string[];
}

export type LocalRequest = Omit<SandboxRequest, 'ttlSeconds' | 'maxOutputBytes' | 'signal' | 'onQueued'> & {
  /** Default: the tool's ttl_seconds. */
  ttlSeconds?: number;
};

export class CommandRuntime {
  constructor(
    readonly sandbox: LocalSandbox,
    /** Set when the worker has HEROKU_API_KEY. */
    private readonly heroku?: PlatformConfig,
  ) {}

  /** Whether this call runs in a one-off dyno (else in the local sandbox). */
  runsInDyno(ctx: ToolRunContext): boolean {
    return Boolean(this.heroku && ctx.runtime.target_app_name);
  }

  /** Runs `bash -c command` with `env` (plus TOOL_CALL_ID) in the call's runtime. */
  async runCommand(ctx: ToolRunContext, command: string, env: Record<string, string>): Promise<CommandOutcome> {
    const app = ctx.runtime.target_app_name;
    if (!this.heroku || !app) {
      const result = await this.runLocally(ctx, { argv: ['bash', '-c', command], env, mergeStderr: true });
      return {
        output: result.stdout,
        exitStatus: result.exitStatus,
        timedOut: result.timedOut,
        truncated: result.truncated.stdout,
        notes: result.notes,
      };
    }
    try {
      return await runOneOffDyno(this.heroku, {
        app,
        command,
        size: ctx.runtime.dyno_size,
        ttlSeconds: ctx.runtime.ttl_seconds,
        env: { ...env, TOOL_CALL_ID: ctx.callKey },
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal: ctx.signal,
        onProgress: (info) => ctx.progress(info),
      });
    } catch (err) {
      if (err instanceof PlatformError) throw new ToolError(err.message, { cause: err });
      throw err;
    }
  }

  /** Runs in the local sandbox with the call's ttl, output cap, cancellation and TOOL_CALL_ID. */
  async runLocally(ctx: ToolRunContext, req: LocalRequest): Promise<SandboxResult> {
    try {
      return await this.sandbox.run({
        ...req,
        env: { ...req.env, TOOL_CALL_ID: ctx.callKey },
        ttlSeconds: req.ttlSeconds ?? ctx.runtime.ttl_seconds,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal: ctx.signal,
        onQueued: () => ctx.progress({ waiting: `for a free sandbox slot (SANDBOX_MAX_CONCURRENT=${this.sandbox.limits.maxConcurrent})` }),
      });
    } catch (err) {
      if (err instanceof SandboxUnavailableError) {
        throw new ToolError(`the local sandbox could not be set up, so nothing was run: ${err.message}. ${err.remedy}`, { cause: err });
      }
      if (err instanceof SandboxQueueTimeoutError) throw new ToolError(err.message, { cause: err });
      throw err;
    }
  }
}

/** What the model reads when output was cut. */
export function truncationNote(stream = 'output'): string {
  return `[${stream} truncated to ${MAX_OUTPUT_BYTES} bytes]`;
}

/** What the model reads when the ttl stopped a process. */
export function timeoutNote(ttlSeconds: number): string {
  return `[timed out after ${ttlSeconds}s: the process was stopped]`;
}
