/**
 * Where commands and code run (spec Part C): a one-off dyno of the tool's app
 * when HEROKU_API_KEY is set and the tool names an app, else the local sandbox.
 */
import { PlatformError, runOneOffDyno } from './heroku/one-off-dyno';
import { ToolError, type ToolRunContext } from './tools/tool';

export const MAX_OUTPUT_BYTES = 64 * 1024;

export interface CommandOutcome {
  output: string;
  exitStatus: number | null;
  timedOut: boolean;
  truncated: boolean;
}

export async function runCommand(ctx: ToolRunContext, command: string, env: Record<string, string>): Promise<CommandOutcome> {
  const app = ctx.runtime.target_app_name;
  if (!ctx.config.herokuApiKey || !app) {
    throw new ToolError('no runtime is available: HEROKU_API_KEY is not set on the worker, and the local sandbox is not available yet');
  }
  try {
    return await runOneOffDyno(
      { token: ctx.config.herokuApiKey, apiUrl: ctx.config.herokuApiUrl },
      {
        app,
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

/** The output as the model reads it, with what happened to the process said plainly. */
export function describeOutcome(outcome: CommandOutcome, ttlSeconds: number): string {
  const notes: string[] = [];
  if (outcome.truncated) notes.push(`[output truncated to ${MAX_OUTPUT_BYTES} bytes]`);
  if (outcome.timedOut) notes.push(`[timed out after ${ttlSeconds}s: the process was stopped]`);
  else if (outcome.exitStatus === null) notes.push('[exit status unknown: the process ended without reporting one]');
  else if (outcome.exitStatus !== 0) notes.push(`[exit status ${outcome.exitStatus}]`);
  return [outcome.output.replace(/\n+$/, ''), ...notes].filter(Boolean).join('\n');
}
