/**
 * postgres_run_query: one plain read (runtimes/postgres/read-only-statement.ts
 * decides, before anything reaches the database) in the read-only session, answered as
 * JSON {"columns","rows","row_count","truncated"[,"note"]}. Values
 * are PostgreSQL's own text for them (NULL is null), so nothing is lost or
 * re-interpreted on the way (bigint, numeric, timestamps, arrays, json).
 */
import Cursor from 'pg-cursor';
import type { CustomTypesConfig, FieldDef, PoolClient } from 'pg';
import { MAX_ROWS, postgresRunQuery } from '../catalog/postgres';
import { readOnlyProblem } from '../runtimes/postgres/read-only-statement';
import type { ReadOnlyDatabases } from '../runtimes/postgres/session';
import { ToolError } from '../tool-call/tool-error';
import { MAX_OUTPUT_BYTES } from '../tool-call/output-cap';
import { runner } from './runner';
/** Rows are fetched in batches, so a huge result never sits in memory whole. */
const BATCH_ROWS = 50;

const TEXT_VALUES = { getTypeParser: () => (value: string) => value } as unknown as CustomTypesConfig;

type Row = (string | null)[];

export interface QueryOutput {
  columns: string[];
  rows: Row[];
  row_count: number;
  truncated: boolean;
  note?: string;
}

/**
 * The extended query protocol (a cursor is Parse/Bind/Execute) refuses more
 * than one statement, so "SET ... ; INSERT ..." and "COMMIT; DROP ..." fail in
 * the server before anything runs.
 */
async function runQuery(client: PoolClient, query: string): Promise<QueryOutput> {
  const cursor = client.query(new Cursor<Row>(query, undefined, { rowMode: 'array', types: TEXT_VALUES }));
  const rows: Row[] = [];
  let columns: string[] = [];
  let bytes = 0;
  let note: string | undefined;
  for (;;) {
    const batch = await read(cursor, BATCH_ROWS);
    if (!columns.length && batch.fields.length) {
      columns = batch.fields.map((f) => f.name);
      bytes = Buffer.byteLength(JSON.stringify(columns));
    }
    if (batch.rows.length === 0) break;
    for (const row of batch.rows) {
      if (rows.length === MAX_ROWS) {
        note = `only the first ${MAX_ROWS} rows are shown; the statement returned more. Add a LIMIT, a WHERE or an aggregate to see the rest.`;
        break;
      }
      bytes += Buffer.byteLength(JSON.stringify(row)) + 1;
      if (bytes > MAX_OUTPUT_BYTES) {
        note = rows.length
          ? `only the first ${rows.length} rows are shown: the result is cut at ${MAX_OUTPUT_BYTES} bytes. Select fewer or shorter columns (e.g. left(col, 200)) or fewer rows.`
          : `no rows are shown: the first row alone is over ${MAX_OUTPUT_BYTES} bytes. Select fewer or shorter columns (e.g. left(col, 200)).`;
        break;
      }
      rows.push(row);
    }
    if (note) break;
  }
  // Ends the portal when rows were left unread (after an error the cursor has already ended it).
  await cursor.close();
  return {
    columns,
    rows,
    row_count: rows.length,
    truncated: note !== undefined,
    ...(note ? { note } : {}),
  };
}

/** cursor.read plus the column descriptions, which only its callback form hands out (none once the cursor is done). */
function read(cursor: Cursor<Row>, count: number): Promise<{ rows: Row[]; fields: FieldDef[] }> {
  return new Promise((resolve, reject) => {
    cursor.read(count, (err, rows, result) => (err ? reject(err) : resolve({ rows, fields: result?.fields ?? [] })));
  });
}

export const postgresRunQueryRunner = (databases: ReadOnlyDatabases) =>
  runner(postgresRunQuery, async (ctx, params, args) => {
    const query = args.query as string;
    const refusal = await readOnlyProblem(query);
    if (refusal) throw new ToolError(`refused: ${refusal}. Nothing was sent to the database.`);
    return databases.run(ctx, params.db_attachment, async (client) => JSON.stringify(await runQuery(client, query)));
  });
