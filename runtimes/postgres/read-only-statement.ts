/**
 * Which statements postgres_run_query runs: plain reads only, decided on the
 * tree PostgreSQL's own parser builds (libpg-query, the server's grammar as
 * WASM), before anything reaches the database. A read-only transaction alone
 * does not stop a statement from acting: it may still end another session
 * (pg_terminate_backend), leave a prepared transaction holding locks behind
 * (PREPARE TRANSACTION), take advisory or row locks, or read server files. So
 * the statement must be SELECT, VALUES, TABLE, EXPLAIN of those or SHOW, with
 * no data-modifying CTE, no FOR UPDATE/SHARE, no SELECT INTO, and no call,
 * anywhere in it, of a function that acts beyond the query.
 */
import { parse } from 'libpg-query';

/**
 * Functions that act on other sessions or the server, hold resources past the
 * statement, reach files, other databases or large objects, or run SQL text
 * (which this check could not see), by their unqualified, lower-case name.
 */
const REFUSED_FUNCTIONS = new Set([
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_log_backend_memory_contexts',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_notify',
  'pg_logical_emit_message',
  'pg_import_system_collations',
  'set_config',
  'loread',
  'lowrite',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
]);
/** Families of such functions: advisory locks (also try_ and xact_), dblink, large objects, server directories, statistics resets, replication. */
const REFUSED_FUNCTION_PREFIXES =
  /^(pg_(try_)?advisory_|dblink|lo_|pg_ls_|pg_stat_reset|pg_file_|pg_replication_|pg_logical_slot_|pg_(create|drop|copy)_\w*replication_slot)/;

/** What this tool runs, for the refusals. */
const ALLOWED = 'postgres_run_query runs one plain read: SELECT, VALUES, TABLE, EXPLAIN of those, or SHOW';

type Node = Record<string, unknown>;

/** Why `sql` may not run, or undefined when it is a plain read. */
export async function readOnlyProblem(sql: string): Promise<string | undefined> {
  let statements: Node[];
  try {
    statements = ((await parse(sql)).stmts ?? []).map((s) => s.stmt as Node);
  } catch (err) {
    return parseFailure(err);
  }
  const [statement, ...more] = statements;
  if (!statement) return 'the query is empty: send one SQL statement';
  if (more.length) return `the query has ${statements.length} statements; ${ALLOWED}, per call`;
  const top = nodeType(statement);
  if (top !== 'SelectStmt' && top !== 'ExplainStmt' && top !== 'VariableShowStmt') return `${ALLOWED}; this is ${describeStatement(statement)}`;
  return nestedProblem(statement);
}

/** The first thing inside the statement that makes it more than a read. */
function nestedProblem(statement: Node): string | undefined {
  const stack: unknown[] = [statement];
  for (let value = stack.pop(); value !== undefined; value = stack.pop()) {
    if (value === null || typeof value !== 'object') continue;
    if (!Array.isArray(value)) {
      for (const [type, body] of Object.entries(value)) {
        const problem = /^[A-Z]/.test(type) && body && typeof body === 'object' ? nodeProblem(type, body as Node) : undefined;
        if (problem) return problem;
      }
    }
    for (const child of Object.values(value)) stack.push(child);
  }
  return undefined;
}

function nodeProblem(type: string, body: Node): string | undefined {
  if (type.endsWith('Stmt') && type !== 'SelectStmt' && type !== 'ExplainStmt' && type !== 'VariableShowStmt') {
    return `${ALLOWED}; this one contains ${describeStatement({ [type]: body })} (a data-modifying WITH, for instance)`;
  }
  if (type === 'SelectStmt' && body.intoClause) return `${ALLOWED}; SELECT ... INTO creates a table`;
  if (type === 'LockingClause') return `${ALLOWED}; FOR UPDATE / FOR SHARE would lock rows`;
  if (type === 'FuncCall') {
    const name = functionName(body);
    if (REFUSED_FUNCTIONS.has(name) || REFUSED_FUNCTION_PREFIXES.test(name)) {
      return `${ALLOWED}; it calls ${name}(), which acts beyond the query (other sessions, locks, files or the server), so it is refused`;
    }
  }
  return undefined;
}

/** `pg_catalog.pg_sleep` → `pg_sleep`: schema-qualified or not, and quoted or not, it is the same function. */
function functionName(call: Node): string {
  const parts = (call.funcname as { String?: { sval?: string } }[] | undefined) ?? [];
  return (parts.at(-1)?.String?.sval ?? '').toLowerCase();
}

const nodeType = (node: Node): string => Object.keys(node)[0] ?? '';

/** A statement's kind in SQL words: InsertStmt → INSERT, TransactionStmt PREPARE → PREPARE TRANSACTION. */
function describeStatement(node: Node): string {
  const type = nodeType(node);
  const body = node[type] as Node;
  if (type === 'VariableSetStmt') {
    const verb = String(body.kind).startsWith('VAR_RESET') ? 'RESET' : 'SET';
    return typeof body.name === 'string' ? `${verb} ${body.name}` : verb;
  }
  if (type === 'TransactionStmt')
    return (
      String(body.kind)
        .replace(/^TRANS_STMT_/, '')
        .replace('_', ' ') + (body.kind === 'TRANS_STMT_PREPARE' ? ' TRANSACTION' : '')
    );
  return type
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

function parseFailure(err: unknown): string {
  const details = (err as { sqlDetails?: { message: string; cursorPosition: number } }).sqlDetails;
  if (details) return `the statement does not parse: ${details.message} (at character ${details.cursorPosition + 1})`;
  if (err instanceof RangeError) return 'the statement nests too deeply to be checked; write it with less nesting';
  return `the statement does not parse: ${(err as Error).message}`;
}
