/**
 * Where commands and code run (spec Part C): a one-off dyno of the tool's app
 * when HEROKU_API_KEY is set and the tool names an app, else the worker's
 * local sandbox (./sandbox; TOOL_SANDBOX=none runs without one, logged).
 */
import { log } from '@temporalio/activity';
import { PlatformError, runOneOffDyno } from './heroku/one-off-dyno';
import { runSandboxed, SandboxUnavailableError, type SandboxRequest, type SandboxResult } from './sandbox/run-sandboxed';
import { ToolError, type ToolRunContext } from './tools/tool';

export const MAX_OUTPUT_BYTES = 64 * 1024;

export interface CommandOutcome {
  /** stdout and stderr as one stream, in the order the process wrote them. */
  output: string;
  exitStatus: number | null;
  timedOut: boolean;
  truncated: boolean;
}

/** Whether this call runs in a one-off dyno (else in the local sandbox). */
export function runsInDyno(ctx: ToolRunContext): boolean {
  return Boolean(ctx.config.herokuApiKey && ctx.runtime.target_app_name);
}

/** Runs `bash -c command` with `env` (plus TOOL_CALL_ID) in the call's runtime. */
export async function runCommand(ctx: ToolRunContext, command: string, env: Record<string, string>): Promise<CommandOutcome> {
  if (!runsInDyno(ctx)) {
    const result = await runLocally(ctx, { argv: ['bash', '-c', command], env, mergeStderr: true });
    return { output: result.stdout, exitStatus: result.exitStatus, timedOut: result.timedOut, truncated: result.truncated.stdout };
  }
  try {
    return await runOneOffDyno(
      { token: ctx.config.herokuApiKey!, apiUrl: ctx.config.herokuApiUrl },
      {
        app: ctx.runtime.target_app_name!,
        command,
        size: ctx.runtime.dyno_size,
        ttlSeconds: ctx.runtime.ttl_seconds,
        env: { ...env, TOOL_CALL_ID: ctx.callKey },
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal: ctx.signal,
        onProgress: (info) => ctx.heartbeat(info),
      },
    );
  } catch (err) {
    if (err instanceof PlatformError) throw new ToolError(err.message);
    throw err;
  }
}

export type LocalRequest = Omit<SandboxRequest, 'ttlSeconds' | 'maxOutputBytes' | 'signal' | 'onProgress'> & {
  /** Default: the tool's ttl_seconds. */
  ttlSeconds?: number;
};

let warnedUnsandboxed = false;

/** Runs in the local sandbox with the call's ttl, output cap, cancellation, heartbeats and TOOL_CALL_ID. */
export async function runLocally(ctx: ToolRunContext, req: LocalRequest): Promise<SandboxResult> {
  const mode = ctx.config.toolSandbox;
  if (mode === 'none' && !warnedUnsandboxed) {
    warnedUnsandboxed = true;
    log.warn(
      'TOOL_SANDBOX=none: commands and code of tools run on the worker host WITHOUT a sandbox (no isolation of files, network or processes)',
    );
  }
  try {
    return await runSandboxed(
      {
        ...req,
        env: { ...req.env, TOOL_CALL_ID: ctx.callKey },
        ttlSeconds: req.ttlSeconds ?? ctx.runtime.ttl_seconds,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal: ctx.signal,
        onProgress: () => ctx.heartbeat(),
      },
      { mode, workerPath: ctx.config.env.PATH },
    );
  } catch (err) {
    if (err instanceof SandboxUnavailableError) {
      throw new ToolError(
        `the local sandbox could not be set up, so nothing was run: ${err.message}. ` +
          'The worker needs bubblewrap (bwrap) with user namespaces allowed; or set TOOL_SANDBOX=none to run tools without a sandbox.',
      );
    }
    throw err;
  }
}

/** The output as the model reads it, with what happened to the process said plainly. */
export function describeOutcome(outcome: CommandOutcome, ttlSeconds: number): string {
  const notes: string[] = [];
  if (outcome.truncated) notes.push(`[output truncated to ${MAX_OUTPUT_BYTES} bytes]`);
  if (outcome.timedOut) notes.push(`[timed out after ${ttlSeconds}s: the process was stopped]`);
  else if (outcome.exitStatus === null) notes.push('[exit status unknown: the process ended without reporting one]');
  else if (outcome.exitStatus !== 0) notes.push(`[exit status ${outcome.exitStatus}]`);
  return [outcome.output.replace(/\n+$/, ''), ...notes].filter(Boolean).join('\n');
}
