/**
 * What the database tools let through before anything reaches a database:
 * which statements are plain reads (on PostgreSQL's own parse tree), which
 * attachments are databases, and what a failed connection may say.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DatabaseError } from 'pg';
import { attachmentUrl } from '../../runtimes/postgres/attachments';
import { connectFailure } from '../../runtimes/postgres/database-errors';
import { readOnlyProblem } from '../../runtimes/postgres/read-only-statement';
import { ToolError } from '../../tool-call/tool-error';

const ALLOWED = 'postgres_run_query runs one plain read: SELECT, VALUES, TABLE, EXPLAIN of those, or SHOW';

describe('readOnlyProblem', () => {
  test('plain reads pass', async () => {
    for (const sql of [
      'select * from orders where total > 10 order by id limit 5',
      'values (1, 2), (3, 4)',
      'table customers',
      'explain analyze select count(*) from orders',
      'show statement_timeout',
      'with recent as (select * from orders where id > 1) select * from recent',
      'select pg_sleep(1), now(), current_setting($$server_version$$), pg_catalog.lower($$A$$)',
      'select 1;', // one statement, one trailing semicolon
    ]) {
      assert.equal(await readOnlyProblem(sql), undefined, sql);
    }
  });

  const refused: [string, string][] = [
    ['insert into t values (1)', `${ALLOWED}; this is INSERT`],
    [`prepare transaction 'x'`, `${ALLOWED}; this is PREPARE TRANSACTION`],
    ['begin', `${ALLOWED}; this is BEGIN`],
    ['set role admin', `${ALLOWED}; this is SET role`],
    ['set default_transaction_read_only = off', `${ALLOWED}; this is SET default_transaction_read_only`],
    ['lock table orders', `${ALLOWED}; this is LOCK`],
    ['copy orders to stdout', `${ALLOWED}; this is COPY`],
    ['do $$ begin end $$', `${ALLOWED}; this is DO`],
    ['call refresh()', `${ALLOWED}; this is CALL`],
    ['listen jobs', `${ALLOWED}; this is LISTEN`],
    ['notify jobs', `${ALLOWED}; this is NOTIFY`],
    ['explain analyze delete from orders', `${ALLOWED}; this one contains DELETE (a data-modifying WITH, for instance)`],
    [
      'with gone as (delete from orders returning *) select * from gone',
      `${ALLOWED}; this one contains DELETE (a data-modifying WITH, for instance)`,
    ],
    ['select * from orders for update', `${ALLOWED}; FOR UPDATE / FOR SHARE would lock rows`],
    ['select * from (select * from orders for share) o', `${ALLOWED}; FOR UPDATE / FOR SHARE would lock rows`],
    ['select * into copy_of_orders from orders', `${ALLOWED}; SELECT ... INTO creates a table`],
    ['select 1; select 2', `the query has 2 statements; ${ALLOWED}, per call`],
    ['  ;  ', 'the query is empty: send one SQL statement'],
    ['selec * from orders', 'the statement does not parse: syntax error at or near "selec" (at character 1)'],
  ];
  for (const [sql, message] of refused) {
    test(`refuses ${sql}`, async () => {
      assert.equal(await readOnlyProblem(sql), message);
    });
  }

  test('functions that act beyond the query are refused wherever they appear, however written', async () => {
    const calls: [string, string][] = [
      ['select pg_terminate_backend(123)', 'pg_terminate_backend'],
      ['select pg_catalog.pg_cancel_backend(pid) from pg_stat_activity', 'pg_cancel_backend'],
      ['select PG_ADVISORY_LOCK(1)', 'pg_advisory_lock'],
      ['select "pg_try_advisory_xact_lock_shared"(1)', 'pg_try_advisory_xact_lock_shared'],
      ['with x as (select pg_advisory_unlock_all()) select 1', 'pg_advisory_unlock_all'],
      ['select * from orders where id = (select pg_try_advisory_lock(2)::int)', 'pg_try_advisory_lock'],
      ['select * from dblink($$dbname=x$$, $$select 1$$) as t(a int)', 'dblink'],
      ['select lo_import($$/etc/passwd$$)', 'lo_import'],
      ['select pg_read_file($$postgresql.conf$$)', 'pg_read_file'],
      ['select * from pg_ls_dir($$.$$)', 'pg_ls_dir'],
      ['select (pg_stat_file($$base$$)).size', 'pg_stat_file'],
      [`select set_config('statement_timeout', '0', false)`, 'set_config'],
      ['select pg_reload_conf()', 'pg_reload_conf'],
      ['select query_to_xml($$delete from orders$$, true, true, $$$$)', 'query_to_xml'],
      ['explain select count(*) filter (where pg_notify($$c$$, $$m$$) is null) from orders', 'pg_notify'],
    ];
    for (const [sql, name] of calls) {
      assert.equal(
        await readOnlyProblem(sql),
        `${ALLOWED}; it calls ${name}(), which acts beyond the query (other sessions, locks, files or the server), so it is refused`,
        sql,
      );
    }
  });

  test('a statement nested deeper than the parser goes is refused, and the parser still works after', async () => {
    assert.match(
      (await readOnlyProblem(`select ${'('.repeat(50_000)}1${')'.repeat(50_000)}`)) ?? '',
      /^the statement does not parse: memory exhausted/,
    );
    assert.equal(await readOnlyProblem('select 1'), undefined);
  });
});

describe('attachmentUrl', () => {
  const env: Record<string, string> = {
    DATABASE_URL: 'postgres://u:p@db.internal:5432/shop',
    FOLLOWER_URL: 'postgresql://u:p@replica.internal/shop',
    INFERENCE_URL: 'https://inference.example',
    REDIS_URL: 'redis://cache.internal:6379',
  };
  const lookup = (attachments?: string[]) => ({ attachments, databaseUrl: (a: string) => env[`${a}_URL`] });
  const refusal = (attachments: string[] | undefined, attachment: string) => {
    try {
      attachmentUrl(lookup(attachments), attachment);
    } catch (err) {
      assert.ok(err instanceof ToolError);
      return err.message;
    }
    return assert.fail('accepted');
  };

  test('by default, any variable holding a postgres:// or postgresql:// URL', () => {
    assert.equal(attachmentUrl(lookup(), 'DATABASE'), env.DATABASE_URL);
    assert.equal(attachmentUrl(lookup(), 'FOLLOWER'), env.FOLLOWER_URL);
  });

  test('other URLs are never databases, and their values are not shown', () => {
    for (const name of ['INFERENCE', 'REDIS']) {
      const message = refusal(undefined, name);
      assert.equal(
        message,
        `${name} is not a database attachment: ${name}_URL does not hold a postgres:// or postgresql:// URL, and the database tools use no other variables (POSTGRES_ATTACHMENTS lists those they may use)`,
      );
    }
  });

  test('POSTGRES_ATTACHMENTS narrows the choice', () => {
    assert.equal(attachmentUrl(lookup(['FOLLOWER']), 'FOLLOWER'), env.FOLLOWER_URL);
    assert.equal(
      refusal(['FOLLOWER'], 'DATABASE'),
      'DATABASE is not a database attachment the tools may use on this worker: POSTGRES_ATTACHMENTS allows FOLLOWER',
    );
    assert.equal(
      refusal(['FOLLOWER', 'INFERENCE'], 'INFERENCE'),
      'INFERENCE is not a database attachment: INFERENCE_URL does not hold a postgres:// or postgresql:// URL, and the database tools use no other variables (POSTGRES_ATTACHMENTS lists those they may use)',
    );
  });

  test('a missing variable is named', () => {
    assert.equal(refusal(undefined, 'ANALYTICS'), 'no database is attached as ANALYTICS: the worker has no ANALYTICS_URL environment variable');
  });
});

describe('connectFailure', () => {
  const url = 'postgres://analyst:secret@db-7.internal.example:6543/shop_prod';
  const serverError = (code: string, message: string) => Object.assign(new DatabaseError(message, 100, 'error'), { code, severity: 'FATAL' });
  const names = ['analyst', 'secret', 'db-7.internal.example', '6543', 'shop_prod'];

  test('failures name no host, port, user or database: they are rewritten from their codes', () => {
    const cases: [unknown, string][] = [
      [
        serverError('28P01', 'password authentication failed for user "analyst"'),
        'authentication failed (SQLSTATE 28P01): check the user name and password in DATABASE_URL',
      ],
      [serverError('3D000', 'database "shop_prod" does not exist'), 'the database named in DATABASE_URL does not exist (SQLSTATE 3D000)'],
      [
        serverError('28000', 'no pg_hba.conf entry for host "10.1.2.3", user "analyst", database "shop_prod", no encryption'),
        "the server does not accept this user from here (SQLSTATE 28000): check the user in DATABASE_URL and the server's pg_hba.conf",
      ],
      [
        Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:6543'), { code: 'ECONNREFUSED' }),
        'the server refused the connection (ECONNREFUSED): nothing listens at the host and port in DATABASE_URL',
      ],
      [
        Object.assign(new Error('getaddrinfo ENOTFOUND db-7.internal.example'), { code: 'ENOTFOUND' }),
        'the host name in DATABASE_URL does not resolve (ENOTFOUND)',
      ],
      [
        new Error("Hostname/IP does not match certificate's altnames: Host: db-7.internal.example. is not in the cert's altnames"),
        "Hostname/IP does not match certificate's altnames: Host: ***. is not in the cert's altnames",
      ],
    ];
    for (const [err, message] of cases) {
      const text = connectFailure(err, 'DATABASE_URL', url);
      assert.equal(text, message);
      for (const name of names) assert.ok(!text.includes(name), `${text} names ${name}`);
    }
  });
});
