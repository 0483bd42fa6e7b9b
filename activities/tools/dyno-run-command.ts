/**
 * dyno_run_command: runs the tool's fixed `cmd`. The model's arguments never
 * reach the shell string; they arrive as environment variables
 * (TOOL_ARG_<NAME>, TOOL_ARGUMENTS), so metacharacters in them are inert.
 */
import { z } from 'zod';
import { describeOutcome, runCommand } from '../command-runtime';
import { schemaProblem } from './json-schema';
import type { Tool } from './tool';

const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {}, required: [] };

const params = z.object({
  cmd: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  description: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  parameters: z
    .record(z.string(), z.unknown(), { error: 'must be a JSON Schema object' })
    .default(EMPTY_OBJECT_SCHEMA)
    .superRefine((schema, ctx) => {
      const problem = schemaProblem(schema);
      if (problem) ctx.addIssue({ code: 'custom', message: `is not a valid JSON Schema: ${problem}` });
      else if (schema.type !== 'object') ctx.addIssue({ code: 'custom', message: 'must describe an object (type "object")' });
    }),
});

export function argumentEnvironment(args: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = { TOOL_ARGUMENTS: JSON.stringify(args) };
  for (const [name, value] of Object.entries(args)) {
    const key = `TOOL_ARG_${name.toUpperCase().replace(/\W/g, '_')}`;
    env[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return env;
}

export const dynoRunCommand: Tool<z.infer<typeof params>> = {
  name: 'dyno_run_command',
  sideEffect: 'side-effecting',
  requiresApp: true,
  toolParams: params,
  modelFunction: (p, description) => ({ description: description ?? p.description, parameters: p.parameters }),
  async run(ctx, p, args) {
    const outcome = await runCommand(ctx, p.cmd, argumentEnvironment(args));
    return describeOutcome(outcome, ctx.runtime.ttl_seconds);
  },
};
