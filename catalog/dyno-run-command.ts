/**
 * dyno_run_command: runs the tool's fixed `cmd`; the model's arguments are
 * what `parameters` declares (they reach the command as environment
 * variables, never in the shell string: runners/dyno-run-command.ts).
 */
import { z } from 'zod';
import type { ToolSpec } from './tool-spec';

const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {}, required: [] };

const params = z.object({
  cmd: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  description: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  parameters: z
    .record(z.string(), z.unknown(), { error: 'must be a JSON Schema object' })
    .default(EMPTY_OBJECT_SCHEMA)
    // The rest (size, depth, meta-schema, patterns) is checked by catalog/json-schema.ts: see argumentsSchema.
    .refine((schema) => schema.type === 'object', 'must describe an object (type "object")'),
});
export type DynoRunCommandParams = z.infer<typeof params>;

export const dynoRunCommand: ToolSpec<DynoRunCommandParams> = {
  name: 'dyno_run_command',
  sideEffect: 'side-effecting',
  requiresApp: true,
  payload: 'text',
  toolParams: params,
  argumentsSchema: (p) => ({ param: 'parameters', schema: p.parameters }),
  modelFunction: (p, description) => ({ description: description ?? p.description, parameters: p.parameters }),
};
