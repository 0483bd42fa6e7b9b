/**
 * The read-only PostgreSQL sessions both database tools run in
 * (docs/api.md#a3-tool-objects). `db_attachment` X is the worker's X_URL when
 * ./attachments.ts allows it. Each attachment has a pool of at most
 * POSTGRES_POOL_SIZE connections; a call waits for one within its ttl. Every
 * call runs in one READ ONLY transaction with statement_timeout = its ttl,
 * lock_timeout = POSTGRES_LOCK_TIMEOUT_MS and idle_in_transaction_session_timeout
 * (a transaction whose worker is gone ends too), which is always rolled back;
 * the connection is then reset (DISCARD ALL) or, after any failure, closed.
 * No error text leaving this module carries the URL or its password, nor, for
 * a failed connection, the host, user or database (./database-errors.ts).
 */
import { Client, Pool, type ClientConfig, type PoolClient } from 'pg';
import { attachmentVariable, type PostgresSettings } from '../../common/config';
import type { ToolRunContext } from '../../tool-call/context';
import { ToolError } from '../../tool-call/tool-error';
import { attachmentUrl } from './attachments';
import { connectFailure, describeError, redactor } from './database-errors';

const CONNECT_TIMEOUT_MS = 10_000;
/** Past statement_timeout: a backstop for a server that stops answering at all. */
const DEADLINE_MARGIN_MS = 5_000;
/** Idle pooled connections are closed after this long. */
const IDLE_MS = 10_000;

/**
 * Run once per call, inside the transaction. Roles that can act even in a
 * read-only transaction (COPY ... TO PROGRAM, COPY ... TO a server file, or
 * read any server file) are refused: such a session could not be read-only.
 * And where the server has it (PostgreSQL 14+), client_connection_check_interval
 * makes the server stop a statement soon after we close the connection
 * (cancellation).
 */
const SESSION_CHECK_SQL = `select current_setting('is_superuser') = 'on' as superuser,
  coalesce(pg_has_role(to_regrole('pg_execute_server_program'), 'USAGE'), false) as run_programs,
  coalesce(pg_has_role(to_regrole('pg_write_server_files'), 'USAGE'), false) as write_files,
  coalesce(pg_has_role(to_regrole('pg_read_server_files'), 'USAGE'), false) as read_files,
  (select set_config(name, '1000', true) from pg_settings where name = 'client_connection_check_interval') as check_interval`;

interface RoleCheck {
  superuser: boolean;
  run_programs: boolean;
  write_files: boolean;
  read_files: boolean;
}

/** The connect timeout belongs to each connection; the pool's own would also cut the wait for a free one short of the ttl. */
class TimedClient extends Client {
  constructor(config?: ClientConfig) {
    super({ ...config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  }
}

export class ReadOnlyDatabases {
  /** One pool per database URL. */
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly settings: PostgresSettings) {}

  /**
   * Runs `work` on a connection to the database attached as `attachment`,
   * inside a READ ONLY transaction, then rolls back. Every failure becomes a
   * ToolError the model can read (cancellation excepted).
   */
  async run<T>(ctx: ToolRunContext, attachment: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
    const variable = attachmentVariable(attachment);
    const url = attachmentUrl(this.settings, attachment);
    const redact = redactor(url);
    const ttl = ctx.runtime.ttl_seconds;
    const timeoutMs = ttl * 1000;
    const pool = this.pool(url);

    const stop = new AbortController();
    const onCancel = () => stop.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onCancel, { once: true });
    const limitMs = 2 * timeoutMs + CONNECT_TIMEOUT_MS + DEADLINE_MARGIN_MS; // waiting for a connection, connecting, the statement
    const deadline = setTimeout(
      () => stop.abort(new ToolError(`the database did not answer within ${limitMs / 1000}s; the connection was closed`)),
      limitMs,
    );
    let client: PoolClient | undefined;
    let reusable = false;
    try {
      client = await this.connection(pool, variable, url, timeoutMs, stop.signal);
      const session = client;
      const transaction = untilAborted(
        (async () => {
          await session.query(
            `BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${timeoutMs}; SET LOCAL lock_timeout = ${this.settings.lockTimeoutMs};` +
              ` SET LOCAL idle_in_transaction_session_timeout = ${timeoutMs}`,
          );
          refuseEscapingRoles((await session.query<RoleCheck>(SESSION_CHECK_SQL)).rows[0], variable);
          return await work(session);
        })(),
        stop.signal,
      );
      // Rolled back whether the work succeeded or the database refused it (harmless when the statement was COMMIT or
      // ROLLBACK: nothing is open then); DISCARD ALL leaves nothing of this call to the next one on the connection.
      const reset = () =>
        untilAborted(
          session.query('ROLLBACK').then(() => session.query('DISCARD ALL')),
          stop.signal,
        );
      const result = await transaction.finally(async () => {
        if (!stop.signal.aborted)
          reusable = await reset().then(
            () => true,
            () => false,
          );
      });
      return result;
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason; // cancelled: the run is ending, not the model's business
      throw new ToolError(redact(err instanceof ToolError ? err.message : describeError(err, ttl)));
    } finally {
      clearTimeout(deadline);
      ctx.signal.removeEventListener('abort', onCancel);
      // Any other connection is closed, not reused; closing it also stops its statement in the server.
      client?.release(reusable ? undefined : true);
    }
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.end()));
  }

  private pool(url: string): Pool {
    let pool = this.pools.get(url);
    if (!pool) {
      pool = new Pool({
        connectionString: url,
        max: this.settings.poolSize,
        idleTimeoutMillis: IDLE_MS,
        // Read-only from the first statement on. Parameters in the URL override these, so each transaction sets them again.
        options: `-c default_transaction_read_only=on -c lock_timeout=${this.settings.lockTimeoutMs}`,
        application_name: 'durable-agents',
        Client: TimedClient,
      });
      pool.on('error', () => {}); // an idle connection the server dropped: the pool replaces it
      this.pools.set(url, pool);
    }
    return pool;
  }

  /** A connection of `pool`, waiting at most `waitMs` for one to be free. */
  private async connection(pool: Pool, variable: string, url: string, waitMs: number, signal: AbortSignal): Promise<PoolClient> {
    const busy = () => pool.totalCount >= this.settings.poolSize;
    const wasBusy = busy();
    const connecting = pool.connect();
    const gaveUp = new AbortController();
    const waited = setTimeout(() => gaveUp.abort(), waitMs);
    let handedOver = false;
    try {
      const client = await untilAborted(connecting, AbortSignal.any([signal, gaveUp.signal]));
      handedOver = true;
      return client;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (gaveUp.signal.aborted) {
        throw new ToolError(
          wasBusy && busy()
            ? `no connection to the database in ${variable} was free within ${waitMs / 1000}s (this tool's ttl_seconds): all ${this.settings.poolSize} this worker may open to it (POSTGRES_POOL_SIZE) stayed busy`
            : `could not connect to the database in ${variable} within ${waitMs / 1000}s (this tool's ttl_seconds)`,
        );
      }
      // pg's words for connectionTimeoutMillis running out.
      const timedOut = (err as Error).message === 'timeout expired' ? `no connection within ${CONNECT_TIMEOUT_MS / 1000}s` : undefined;
      throw new ToolError(`could not connect to the database in ${variable}: ${timedOut ?? connectFailure(err, variable, url)}`);
    } finally {
      clearTimeout(waited);
      // Given up on: the connection, when it comes, goes straight back.
      if (!handedOver)
        connecting.then(
          (client) => client.release(),
          () => {},
        );
    }
  }
}

function refuseEscapingRoles(role: RoleCheck | undefined, variable: string): void {
  if (!role) throw new ToolError(`the session check on ${variable} returned no row`);
  const powers = role.superuser
    ? ['is a superuser']
    : [
        role.run_programs && 'may run programs on the server (pg_execute_server_program)',
        role.write_files && 'may write files on the server (pg_write_server_files)',
        role.read_files && 'may read any file on the server (pg_read_server_files)',
      ].filter(Boolean);
  if (powers.length) {
    throw new ToolError(
      `refusing to use ${variable}: its role ${powers.join(' and ')}, so even a read-only transaction could act beyond reading the database (COPY ... TO PROGRAM, or server files). Give ${variable} a role without these privileges.`,
    );
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
