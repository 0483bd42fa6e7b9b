/**
 * The request half of the wire contract (docs/api.md#a1-request,
 * docs/api.md#a3-tool-objects): the schema of POST /v1/agents/heroku bodies
 * and readable validation messages. The workflow imports only its types.
 */
import { z } from 'zod';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

/** Heroku accepts a string or an array of text parts; we normalise to a string. */
const content = z
  .union([z.string(), z.array(textPart)], { error: 'must be a string or an array of {type:"text", text} parts' })
  .transform((c) => (typeof c === 'string' ? c : c.map((p) => p.text).join('')));

const toolCall = z.object({
  id: z.string().min(1, 'must be a non-empty string'),
  type: z.literal('function', { error: 'must be "function"' }),
  function: z.object({
    name: z.string().min(1, 'must be a non-empty string'),
    // Heroku's own docs show objects here, clients send JSON strings: accept both.
    arguments: z
      .union([z.string(), z.record(z.string(), z.unknown())], { error: 'must be a JSON string' })
      .transform((a) => (typeof a === 'string' ? a : JSON.stringify(a))),
  }),
});

const message = z.discriminatedUnion(
  'role',
  [
    z.object({ role: z.literal('system'), content }),
    z.object({ role: z.literal('user'), content }),
    z
      .object({
        role: z.literal('assistant'),
        content: content.nullish(),
        refusal: z.string().nullish(),
        tool_calls: z.array(toolCall).optional(),
      })
      .refine((m) => m.content != null || (m.tool_calls?.length ?? 0) > 0, {
        message: 'needs content or tool_calls',
      }),
    z.object({
      role: z.literal('tool'),
      content,
      tool_call_id: z.string().min(1, 'must be a non-empty string'),
      name: z.string().optional(),
    }),
  ],
  { error: 'must be one of system, user, assistant, tool' },
);

const unitInterval = (field: string) =>
  z.number({ error: 'must be a number' }).min(0, `${field} must be between 0 and 1`).max(1, `${field} must be between 0 and 1`);

/** A tool object as the client sends it; tool-specific rules and defaults live in the tool catalogue (catalog/). */
export const toolObjectSchema = z.object({
  type: z.enum(['heroku_tool', 'mcp'], { error: 'must be "heroku_tool" or "mcp"' }),
  name: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string'),
  description: z.string({ error: 'must be a string' }).optional(),
  runtime_params: z
    .object(
      {
        target_app_name: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string').optional(),
        dyno_size: z.string({ error: 'must be a string' }).min(1, 'must be a non-empty string').optional(),
        ttl_seconds: z.number({ error: 'must be an integer' }).int('must be an integer').optional(),
        max_calls: z.number({ error: 'must be an integer' }).int('must be an integer').min(1, 'must be at least 1').optional(),
        tool_params: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
        // Our extensions (docs/api.md#b5-approvals): Heroku's own service ignores them.
        requires_approval: z.boolean({ error: 'must be a boolean' }).optional(),
        approval_timeout_seconds: z.number({ error: 'must be an integer' }).int('must be an integer').min(1, 'must be at least 1').optional(),
      },
      { error: 'must be an object' },
    )
    .optional(),
});
export type ToolObject = z.infer<typeof toolObjectSchema>;

export const agentRequestSchema = z.object({
  model: z.string({ error: 'is required and must be a string' }).min(1, 'must be a non-empty string'),
  messages: z.array(message, { error: 'is required and must be an array' }).min(1, 'must not be empty'),
  max_tokens_per_inference_request: z.number({ error: 'must be an integer' }).int('must be an integer').positive('must be greater than 0').optional(),
  stop: z.union([z.string(), z.array(z.string())], { error: 'must be a string or an array of strings' }).optional(),
  temperature: unitInterval('temperature').optional(),
  top_p: unitInterval('top_p').optional(),
  tools: z.array(toolObjectSchema, { error: 'must be an array' }).optional(),
  // Our extensions (docs/api.md#part-b-durable-run-extensions); Heroku's own service ignores them.
  background: z.boolean({ error: 'must be a boolean' }).optional(),
  webhook: z
    .string({ error: 'must be a string (an http or https URL)' })
    .min(1, 'must be a non-empty string')
    .max(2048, 'must be at most 2048 characters')
    .optional(),
  max_total_tokens: z.number({ error: 'must be an integer' }).int('must be an integer').positive('must be greater than 0').optional(),
  max_duration_seconds: z.number({ error: 'must be an integer' }).int('must be an integer').positive('must be greater than 0').optional(),
});
export type AgentRequest = z.infer<typeof agentRequestSchema>;
export type ChatMessage = AgentRequest['messages'][number];
export type ToolCall = z.infer<typeof toolCall>;

/** `tools[1].runtime_params.ttl_seconds`: how errors name fields (docs/api.md#a2-errors-before-the-stream). */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/** One readable sentence for the first validation problem, naming the field. Parse with `reportInput: true`. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const field = fieldPath(issue.path);
  const msg = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
  // Range messages already start with the field name ("temperature must be ...").
  if (!field || msg.startsWith(`${field} `)) return msg;
  return `${field} ${msg}`;
}
