/**
 * postgres_get_schema and postgres_run_query: `db_attachment` names the
 * database (`DATABASE` → the worker's DATABASE_URL); both run in a read-only
 * session (runtimes/postgres/session.ts) and answer in plain text.
 */
import { z } from 'zod';
import type { ToolSpec } from './tool-spec';

const attachmentParams = z.object({
  db_attachment: z
    .string({ error: 'must be a string' })
    .regex(
      /^[A-Z][A-Z0-9_]*$/,
      "must be an attachment name such as DATABASE or HEROKU_POSTGRESQL_RED (upper-case letters, digits and '_', starting with a letter)",
    ),
});
export type AttachmentParams = z.infer<typeof attachmentParams>;

/** postgres_run_query returns at most this many rows. */
export const MAX_ROWS = 500;

/** A read-only database tool: `describe` says what it does to the database the request names. */
function postgresSpec(name: string, describe: (attachment: string) => string, parameters: Record<string, unknown>): ToolSpec<AttachmentParams> {
  return {
    name,
    sideEffect: 'read-only',
    requiresApp: false,
    payload: 'text',
    toolParams: attachmentParams,
    modelFunction: (p, description) => ({ description: description ?? describe(p.db_attachment), parameters }),
  };
}

export const postgresGetSchema = postgresSpec(
  'postgres_get_schema',
  (db) =>
    `Describes the PostgreSQL database ${db}: its tables and views with their columns, types, nullability, defaults, primary keys, foreign keys and other constraints.`,
  { type: 'object', properties: {}, required: [] },
);

export const postgresRunQuery = postgresSpec(
  'postgres_run_query',
  (db) =>
    `Runs one read-only SQL statement on the PostgreSQL database ${db} and returns JSON: column names, rows as arrays of PostgreSQL text values (NULL as null), and whether the result was cut (at most ${MAX_ROWS} rows).`,
  {
    type: 'object',
    properties: { query: { type: 'string', minLength: 1, description: 'exactly one SQL statement; writes are refused' } },
    required: ['query'],
  },
);
