/**
 * dyno_run_command: runs the tool's fixed `cmd`; the model's arguments are
 * what `parameters` declares (they reach the command as environment
 * variables, never in the shell string: runners/dyno-run-command.ts).
 */
import { z } from 'zod';
import { schemaProblem } from './json-schema';
import type { ToolSpec } from './tool-spec';

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
export type DynoRunCommandParams = z.infer<typeof params>;

export const dynoRunCommand: ToolSpec<DynoRunCommandParams> = {
  name: 'dyno_run_command',
  sideEffect: 'side-effecting',
  requiresApp: true,
  payload: 'text',
  toolParams: params,
  modelFunction: (p, description) => ({ description: description ?? p.description, parameters: p.parameters }),
};
