/**
 * The read-only PostgreSQL session both database tools run in
 * (docs/api.md#a3-tool-objects). The URL comes from the worker's
 * `<ATTACHMENT>_URL`, through the look-up the runner was given; each call gets
 * its own connection and one READ ONLY transaction that is always rolled back;
 * and no error text leaving this module carries the URL or its password (tool
 * payloads land in workflow history and in events).
 */
import { Client, DatabaseError } from 'pg';
import { attachmentVariable } from '../../common/config';
import type { ToolRunContext } from '../../tool-call/context';
import { ToolError } from '../../tool-call/tool-error';

/** `<ATTACHMENT>_URL` of the worker's environment, or undefined. */
export type DatabaseUrlLookup = (attachment: string) => string | undefined;

const CONNECT_TIMEOUT_MS = 10_000;
/** Past statement_timeout: a backstop for a server that stops answering at all. */
const DEADLINE_MARGIN_MS = 5_000;

/**
 * Run once per session, inside the transaction. Roles that can change things
 * even in a read-only transaction (COPY ... TO PROGRAM, COPY ... TO a server
 * file) are refused: such a session could not be read-only. And where the
 * server has it (PostgreSQL 14+), client_connection_check_interval makes the
 * server stop a statement soon after we close the connection (cancellation).
 */
const SESSION_CHECK_SQL = `select current_setting('is_superuser') = 'on' as superuser,
  coalesce(pg_has_role(to_regrole('pg_execute_server_program'), 'USAGE'), false) as run_programs,
  coalesce(pg_has_role(to_regrole('pg_write_server_files'), 'USAGE'), false) as write_files,
  (select set_config(name, '1000', true) from pg_settings where name = 'client_connection_check_interval') as check_interval`;

/**
 * Runs `work` on a fresh connection to `<attachment>_URL`, inside a READ ONLY
 * transaction with statement_timeout = the tool's ttl_seconds, then rolls back
 * and disconnects. Every failure becomes a ToolError the model can read
 * (cancellation excepted).
 */
export async function withReadOnlySession<T>(
  ctx: ToolRunContext,
  databaseUrl: DatabaseUrlLookup,
  attachment: string,
  work: (client: Client) => Promise<T>,
): Promise<T> {
  const variable = attachmentVariable(attachment);
  const url = databaseUrl(attachment);
  if (!url) throw new ToolError(missingAttachment(attachment, variable));
  const redact = redactor(url);
  const ttl = ctx.runtime.ttl_seconds;
  const timeoutMs = ttl * 1000;

  let client: Client;
  try {
    client = new Client({
      connectionString: url,
      // Read-only and time-limited from the first statement on. Parameters in
      // the URL override these, so the transaction below sets both again.
      options: `-c default_transaction_read_only=on -c statement_timeout=${timeoutMs}`,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'durable-agents',
    });
  } catch (err) {
    throw new ToolError(redact(`${variable} is not a usable PostgreSQL URL: ${(err as Error).message}`));
  }
  // A connection dropped mid-call is reported through the pending query.
  client.on('error', () => {});

  const session = async (): Promise<T> => {
    try {
      await client.connect();
    } catch (err) {
      // pg's words for connectionTimeoutMillis running out.
      const timedOut = (err as Error).message === 'timeout expired' ? ` (no connection within ${CONNECT_TIMEOUT_MS / 1000}s)` : '';
      throw new ToolError(`could not connect to the database in ${variable}: ${describeError(err, ttl)}${timedOut}`);
    }
    await client.query(`BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${timeoutMs}`);
    const [role] = (await client.query<{ superuser: boolean; run_programs: boolean; write_files: boolean }>(SESSION_CHECK_SQL)).rows;
    if (!role) throw new ToolError(`the session check on ${variable} returned no row`);
    const powers = role.superuser
      ? ['is a superuser']
      : [
          role.run_programs && 'may run programs on the server (pg_execute_server_program)',
          role.write_files && 'may write files on the server (pg_write_server_files)',
        ].filter(Boolean);
    if (powers.length) {
      throw new ToolError(
        `refusing to use ${variable}: its role ${powers.join(' and ')}, so even a read-only transaction could change things (COPY ... TO PROGRAM or TO a file). Give ${variable} a role without these privileges.`,
      );
    }
    try {
      return await work(client);
    } finally {
      // Also harmless when the statement was COMMIT or ROLLBACK: nothing is open then.
      await client.query('ROLLBACK').catch(() => {});
    }
  };

  const stop = new AbortController();
  const onCancel = () => stop.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onCancel, { once: true });
  const limitMs = CONNECT_TIMEOUT_MS + timeoutMs + DEADLINE_MARGIN_MS;
  const deadline = setTimeout(
    () => stop.abort(new ToolError(`the database did not answer within ${limitMs / 1000}s; the connection was closed`)),
    limitMs,
  );
  try {
    return await untilAborted(session(), stop.signal);
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason; // cancelled: the run is ending, not the model's business
    throw new ToolError(redact(err instanceof ToolError ? err.message : describeError(err, ttl)));
  } finally {
    clearTimeout(deadline);
    ctx.signal.removeEventListener('abort', onCancel);
    // end() waits for the server; after an abort it may never answer.
    const ended = client.end().catch(() => {});
    if (!stop.signal.aborted) await ended;
  }
}

function missingAttachment(attachment: string, variable: string): string {
  const hint = attachment.endsWith('_URL')
    ? ` (db_attachment names the attachment without _URL: '${attachment.slice(0, -4)}' reads ${attachment})`
    : '';
  return `no database is attached as ${attachment}: the worker has no ${variable} environment variable${hint}`;
}

/** The database's own words for a database error; the message for anything else. */
function describeError(err: unknown, ttlSeconds: number): string {
  if (err instanceof DatabaseError) {
    const lines = [`${err.severity ?? 'ERROR'}: ${err.message} (SQLSTATE ${err.code})${err.position ? ` at character ${err.position}` : ''}`];
    if (err.detail) lines.push(`DETAIL: ${err.detail}`);
    if (err.hint) lines.push(`HINT: ${err.hint}`);
    if (err.code === '57014' && /statement timeout/.test(err.message)) {
      lines.push(`The statement ran longer than this tool's ttl_seconds (${ttlSeconds}s) and was stopped.`);
    }
    return lines.join('\n');
  }
  return err instanceof Error ? err.message : String(err);
}

/** Replaces the URL and its password (as written and decoded) in a message. */
function redactor(url: string): (text: string) => string {
  const secrets = [url];
  try {
    const password = new URL(url).password;
    if (password) secrets.push(password);
    secrets.push(decodeURIComponent(password));
  } catch {
    // not a URL, or a password that is not valid %-encoding: redact what we have
  }
  const ordered = [...new Set(secrets)].filter(Boolean).sort((a, b) => b.length - a.length);
  return (text) => ordered.reduce((t, s) => t.split(s).join('***'), text);
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
