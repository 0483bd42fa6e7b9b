/** `tool_params` of a tool that takes none: an empty object, and any key in it is named as an error. */
import { z } from 'zod';

export const noToolParams = z
  .record(z.string(), z.unknown(), { error: 'must be an object' })
  .superRefine((value, ctx) => {
    for (const key of Object.keys(value)) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'is not a parameter of this tool: it takes no tool_params' });
    }
  })
  .transform((): Record<string, never> => ({}));
