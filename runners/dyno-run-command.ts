/**
 * dyno_run_command: runs the tool's fixed `cmd`. The model's arguments never
 * reach the shell string; they arrive as environment variables
 * (TOOL_ARG_<NAME>, TOOL_ARGUMENTS), so metacharacters in them are inert.
 */
import { dynoRunCommand } from '../catalog/dyno-run-command';
import { timeoutNote, truncationNote, type CommandOutcome, type CommandRuntime } from '../runtimes/command-runtime';
import { runner } from './runner';

export function argumentEnvironment(args: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = { TOOL_ARGUMENTS: JSON.stringify(args) };
  for (const [name, value] of Object.entries(args)) {
    const key = `TOOL_ARG_${name.toUpperCase().replace(/\W/g, '_')}`;
    env[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return env;
}

/** The output as the model reads it, with what happened to the process said plainly. */
export function describeOutcome(outcome: CommandOutcome, ttlSeconds: number): string {
  const notes: string[] = [];
  if (outcome.truncated) notes.push(truncationNote());
  if (outcome.timedOut) notes.push(timeoutNote(ttlSeconds));
  else if (outcome.exitStatus === null) notes.push('[exit status unknown: the process ended without reporting one]');
  else if (outcome.exitStatus !== 0) notes.push(`[exit status ${outcome.exitStatus}]`);
  notes.push(...(outcome.notes ?? []));
  return [outcome.output.replace(/\n+$/, ''), ...notes].filter(Boolean).join('\n');
}

export const dynoRunCommandRunner = (commands: CommandRuntime) =>
  runner(dynoRunCommand, async (ctx, params, args) => {
    const outcome = await commands.runCommand(ctx, params.cmd, argumentEnvironment(args));
    return describeOutcome(outcome, ctx.runtime.ttl_seconds);
  });
