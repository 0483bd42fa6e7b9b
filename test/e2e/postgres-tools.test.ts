/**
 * postgres_get_schema and postgres_run_query end to end: POST /v1/agents/heroku
 * with the scripted model, the worker connecting to a real, throwaway
 * PostgreSQL cluster through DATABASE_URL. The role in that URL owns the
 * tables, so every refused write below is refused by the tools (PostgreSQL's
 * parser before the database, the read-only session in it), not by missing
 * privileges. The worker may open 3 connections per attachment.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Client } from 'pg';
import { historyText } from '../support/history';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { getJson, post, readStream, runAgent, type StreamResult } from '../support/sse';
import { useStack } from '../support/stack';
import { until } from '../support/wait';
import { freePort } from '../../dev/dev-server';

// '@' and '/' make the password differ from its %-encoded form in the URL: both must stay secret.
const PASSWORD = `p@ss/${randomBytes(8).toString('hex')}`;
const ADMIN_PASSWORD = `admin-${randomBytes(8).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(8).toString('hex')}`;
const PROGRAM_MARKER = path.join(os.tmpdir(), `pg-tool-escape-${randomBytes(4).toString('hex')}`);
const FILE_MARKER = path.join(os.tmpdir(), `pg-tool-file-${randomBytes(4).toString('hex')}`);
/** Roles that are no superusers but can escape a read-only transaction. */
const RUNNER_PASSWORD = `runner-${randomBytes(8).toString('hex')}`;
const WRITER_PASSWORD = `writer-${randomBytes(8).toString('hex')}`;

const FIXTURE = `
create table customers (
  id serial primary key,
  name text not null,
  email text unique,
  signed_up date not null default '2024-01-01'
);
comment on table customers is 'people who buy things';
create table orders (
  id bigint generated always as identity primary key,
  customer_id integer not null references customers (id),
  total numeric(10,2) not null check (total >= 0),
  note text
);
create view order_totals as
  select c.name, sum(o.total) as spent from customers c join orders o on o.customer_id = c.id group by c.name;
insert into customers (name, email, signed_up) values ('Ada', 'ada@example.com', '2024-03-01'), ('Grace', null, '2024-04-02');
insert into orders (customer_id, total, note) values (1, 12.50, null), (1, 7.25, 'gift'), (2, 100.00, null);
`;

let pg: TestPostgres;
let silent: net.Server;
let closedPort: number;
let url: string;
const runs: StreamResult[] = [];

const POOL_SIZE = 3;

const stack = useStack(async () => {
  pg = await startPostgres({ max_prepared_transactions: '5' }); // so that PREPARE TRANSACTION would work, if let through
  const admin = await pg.admin();
  await admin.query(`create role analyst login password '${PASSWORD}'`);
  await admin.query(`create role reader login password '${PASSWORD}' in role pg_read_server_files`);
  await admin.query(`alter role postgres password '${ADMIN_PASSWORD}'`);
  await admin.query('create database shop owner analyst');
  await admin.query(`create role runner login password '${RUNNER_PASSWORD}' in role pg_execute_server_program`);
  // Through a group role: an inherited privilege counts as much as a direct one.
  await admin.query('create role file_writers nologin in role pg_write_server_files');
  await admin.query(`create role writer login password '${WRITER_PASSWORD}' in role file_writers`);
  await admin.end();
  url = pg.url('analyst', PASSWORD, 'shop');
  await withDb((db) => db.query(FIXTURE));

  // Accepts TCP connections and never answers: a database that hangs.
  silent = net.createServer(() => {}).listen(0, '127.0.0.1');
  await new Promise((resolve) => silent.once('listening', resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  closedPort = await freePort(); // nothing listens there
  return {
    workerEnv: {
      DATABASE_URL: url,
      ADMIN_URL: pg.url('postgres', ADMIN_PASSWORD, 'shop'),
      READER_URL: pg.url('reader', PASSWORD, 'shop'),
      WRONG_URL: pg.url('analyst', WRONG_PASSWORD, 'shop'),
      PROGRAM_URL: pg.url('runner', RUNNER_PASSWORD, 'shop'),
      FILES_URL: pg.url('writer', WRITER_PASSWORD, 'shop'),
      NODB_URL: pg.url('analyst', PASSWORD, 'nosuchdb'),
      SILENT_URL: `postgres://analyst:${encodeURIComponent(PASSWORD)}@127.0.0.1:${silentPort}/shop`,
      REFUSED_URL: `postgres://analyst:${encodeURIComponent(PASSWORD)}@127.0.0.1:${closedPort}/shop`,
      POSTGRES_POOL_SIZE: String(POOL_SIZE),
      POSTGRES_LOCK_TIMEOUT_MS: '1000',
    },
  };
});
after(async () => {
  silent?.close();
  await pg?.stop();
  fs.rmSync(PROGRAM_MARKER, { force: true });
  fs.rmSync(FILE_MARKER, { force: true });
});

async function withDb<T>(work: (db: Client) => Promise<T>): Promise<T> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

const dbTools = (attachment = 'DATABASE', runtime: Record<string, unknown> = {}) => [
  { type: 'heroku_tool', name: 'postgres_get_schema', runtime_params: { tool_params: { db_attachment: attachment }, ...runtime } },
  {
    type: 'heroku_tool',
    name: 'postgres_run_query',
    runtime_params: { max_calls: 20, tool_params: { db_attachment: attachment }, ...runtime },
  },
];

const callQuery = (query: string) => `CALL postgres_run_query ${JSON.stringify({ query })}`;

/** Runs the scripted agent with these CALL lines; returns the tool messages' contents, in order. */
async function toolResults(lines: string[], tools = dbTools()): Promise<string[]> {
  const res = await runAgent(stack, { model: 'm', messages: [{ role: 'user', content: lines.join('\n') }], tools });
  assert.equal(res.status, 200, res.raw);
  runs.push(res);
  return res.messages.filter((m) => m.object === 'tool.completion').map((m) => m.choices[0].message.content);
}

const queryResult = (payload: string) => `Tool 'postgres_run_query' returned result: ${payload}`;

const snapshot = () =>
  withDb(async (db) => ({
    customers: (await db.query('select * from customers order by id')).rows,
    orders: (await db.query('select * from orders order by id')).rows,
    tables: (await db.query(`select table_name from information_schema.tables where table_schema = 'public' order by 1`)).rows,
  }));

describe('postgres_get_schema', () => {
  test('lists tables and views with columns, types, nullability, defaults, keys and comments', async () => {
    const [content] = await toolResults(['CALL postgres_get_schema {}']);
    const prefix = "Tool 'postgres_get_schema' returned result: ";
    assert.ok(content!.startsWith(prefix), content);
    const [header, ...rest] = content!.slice(prefix.length).split('\n');
    assert.match(
      header!,
      /^-- Database shop \(PostgreSQL \d+\.\d+.*\): 2 tables, 1 view outside the system schemas\. Views are shown with their columns, not their definitions\.$/,
    );
    assert.equal(
      rest.join('\n'),
      [
        '-- people who buy things',
        'CREATE TABLE public.customers (',
        "  id integer NOT NULL DEFAULT nextval('customers_id_seq'::regclass),",
        '  name text NOT NULL,',
        '  email text,',
        "  signed_up date NOT NULL DEFAULT '2024-01-01'::date,",
        '  PRIMARY KEY (id),',
        '  UNIQUE (email)',
        ');',
        'CREATE VIEW public.order_totals (',
        '  name text,',
        '  spent numeric',
        ');',
        'CREATE TABLE public.orders (',
        '  id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,',
        '  customer_id integer NOT NULL,',
        '  total numeric(10,2) NOT NULL,',
        '  note text,',
        '  PRIMARY KEY (id),',
        '  CHECK ((total >= (0)::numeric)),',
        '  FOREIGN KEY (customer_id) REFERENCES customers(id)',
        ');',
      ].join('\n'),
    );
  });

  test('the model sees an argument-less schema tool and a query tool that requires `query`', async () => {
    await toolResults(['CALL postgres_get_schema {}']);
    const offered = stack.model.requests.at(-1)!.body.tools.map((t: any) => t.function);
    const byName = Object.fromEntries(offered.map((f: any) => [f.name, f]));
    assert.deepEqual(byName.postgres_get_schema.parameters, { type: 'object', properties: {}, required: [] });
    assert.deepEqual(byName.postgres_run_query.parameters.required, ['query']);
    assert.match(byName.postgres_run_query.description, /read-only SQL statement on the PostgreSQL database DATABASE/);
  });
});

describe('postgres_run_query', () => {
  test('a select returns the columns and rows as PostgreSQL text, NULL as null', async () => {
    const [content] = await toolResults([
      callQuery(
        'select c.id, c.name, c.email, c.signed_up, sum(o.total) as spent from customers c join orders o on o.customer_id = c.id group by c.id order by c.id',
      ),
    ]);
    assert.equal(
      content,
      queryResult(
        JSON.stringify({
          columns: ['id', 'name', 'email', 'signed_up', 'spent'],
          rows: [
            ['1', 'Ada', 'ada@example.com', '2024-03-01', '19.75'],
            ['2', 'Grace', null, '2024-04-02', '100.00'],
          ],
          row_count: 2,
          truncated: false,
        }),
      ),
    );
  });

  test('writes, locks, session and transaction commands are refused before they reach the database, and nothing changes', async () => {
    const unchanged = await snapshot();
    const allowed = 'postgres_run_query runs one plain read: SELECT, VALUES, TABLE, EXPLAIN of those, or SHOW';
    const attempts: Array<[string, string]> = [
      [`insert into customers (name) values ('Eve')`, 'this is INSERT'],
      [`update orders set total = 0`, 'this is UPDATE'],
      [`delete from orders`, 'this is DELETE'],
      [`drop table orders`, 'this is DROP'],
      [`create table notes (body text)`, 'this is CREATE'],
      [`with gone as (delete from orders returning *) select count(*) from gone`, 'this one contains DELETE (a data-modifying WITH, for instance)'],
      [`copy customers to program 'touch ${PROGRAM_MARKER}'`, 'this is COPY'],
      [`set default_transaction_read_only = off; insert into customers (name) values ('Eve')`, 'the query has 2 statements'],
      [`set transaction read write`, 'this is SET'],
      [`set session characteristics as transaction read write`, 'this is SET'],
      [`reset all`, 'this is RESET'],
      [`begin`, 'this is BEGIN'],
      [`commit`, 'this is COMMIT'],
      [`do $$ begin commit; drop table orders; end $$`, 'this is DO'],
      [`vacuum orders`, 'this is VACUUM'],
      [`select * from orders for update`, 'FOR UPDATE / FOR SHARE would lock rows'],
      [`select set_config('default_transaction_read_only', 'off', false)`, 'it calls set_config()'],
    ];
    const results = await toolResults(attempts.map(([query]) => callQuery(query)));
    assert.equal(results.length, attempts.length);
    attempts.forEach(([query, expected], i) => {
      const prefix = queryResult('Error: refused: ');
      assert.ok(results[i]!.startsWith(prefix), `${query} -> ${results[i]}`);
      assert.ok(results[i]!.includes(expected) && results[i]!.endsWith('. Nothing was sent to the database.'), `${query} -> ${results[i]}`);
      if (!expected.startsWith('the query has')) assert.ok(results[i]!.includes(allowed), results[i]);
    });
    assert.deepEqual(await snapshot(), unchanged);
    assert.equal(fs.existsSync(PROGRAM_MARKER), false, 'COPY TO PROGRAM ran a program');
  });

  test('what the parser lets through still runs in a read-only transaction', async () => {
    const unchanged = await snapshot();
    const results = await toolResults([callQuery(`select nextval('customers_id_seq')`), callQuery(`select setval('customers_id_seq', 100)`)]);
    assert.deepEqual(results, [
      queryResult('Error: ERROR: cannot execute nextval() in a read-only transaction (SQLSTATE 25006)'),
      queryResult('Error: ERROR: cannot execute setval() in a read-only transaction (SQLSTATE 25006)'),
    ]);
    assert.deepEqual(await snapshot(), unchanged);
  });

  test('each call has lock_timeout (POSTGRES_LOCK_TIMEOUT_MS) and an idle-in-transaction timeout of its ttl', async () => {
    const [locks, idle] = await toolResults(
      [callQuery('show lock_timeout'), callQuery('show idle_in_transaction_session_timeout')],
      dbTools('DATABASE', { ttl_seconds: 7 }),
    );
    assert.deepEqual(
      [locks, idle],
      [
        queryResult(JSON.stringify({ columns: ['lock_timeout'], rows: [['1s']], row_count: 1, truncated: false })),
        queryResult(JSON.stringify({ columns: ['idle_in_transaction_session_timeout'], rows: [['7s']], row_count: 1, truncated: false })),
      ],
    );
    // A table someone else has locked: the read gives up after lock_timeout instead of waiting out its ttl.
    await withDb(async (other) => {
      await other.query('begin; lock table orders in access exclusive mode');
      try {
        const started = Date.now();
        const [content] = await toolResults([callQuery('select count(*) from orders')]);
        assert.equal(content, queryResult('Error: ERROR: canceling statement due to lock timeout (SQLSTATE 55P03) at character 22'));
        assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
      } finally {
        await other.query('rollback');
      }
    });
  });

  test('statement_timeout follows ttl_seconds: a long query is stopped with a readable error', async () => {
    const started = Date.now();
    const [content] = await toolResults([callQuery('select pg_sleep(90)')], dbTools('DATABASE', { ttl_seconds: 1 }));
    assert.equal(
      content,
      queryResult(
        "Error: ERROR: canceling statement due to statement timeout (SQLSTATE 57014)\nThe statement ran longer than this tool's ttl_seconds (1s) and was stopped.",
      ),
    );
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
  });

  test('at most 500 rows, and a note says the result was cut', async () => {
    const [content] = await toolResults([callQuery('select n from generate_series(1, 600) n')]);
    const out = JSON.parse(content!.slice(queryResult('').length));
    assert.deepEqual(out.columns, ['n']);
    assert.equal(out.rows.length, 500);
    assert.deepEqual(out.rows.at(-1), ['500']);
    assert.equal(out.row_count, 500);
    assert.equal(out.truncated, true);
    assert.equal(out.note, 'only the first 500 rows are shown; the statement returned more. Add a LIMIT, a WHERE or an aggregate to see the rest.');
  });

  test('exactly 500 rows are not reported as cut', async () => {
    const [content] = await toolResults([callQuery('select n from generate_series(1, 500) n')]);
    const out = JSON.parse(content!.slice(queryResult('').length));
    assert.equal(out.row_count, 500);
    assert.equal(out.truncated, false);
    assert.equal('note' in out, false);
  });

  test('output is cut at 64 KiB, with a note', async () => {
    const [content] = await toolResults([callQuery(`select n, repeat('x', 1000) as pad from generate_series(1, 200) n`)]);
    const payload = content!.slice(queryResult('').length);
    assert.ok(Buffer.byteLength(payload) <= 64 * 1024 + 512, `payload is ${Buffer.byteLength(payload)} bytes`);
    const out = JSON.parse(payload);
    assert.ok(out.rows.length > 50 && out.rows.length < 70, `${out.rows.length} rows`);
    assert.equal(out.row_count, out.rows.length);
    assert.equal(out.truncated, true);
    assert.equal(
      out.note,
      `only the first ${out.rows.length} rows are shown: the result is cut at 65536 bytes. Select fewer or shorter columns (e.g. left(col, 200)) or fewer rows.`,
    );

    const [huge] = await toolResults([callQuery(`select repeat('y', 70000) as body`)]);
    assert.equal(
      huge,
      queryResult(
        JSON.stringify({
          columns: ['body'],
          rows: [],
          row_count: 0,
          truncated: true,
          note: 'no rows are shown: the first row alone is over 65536 bytes. Select fewer or shorter columns (e.g. left(col, 200)).',
        }),
      ),
    );
  });

  test('cancelling the run stops the query in the database too, within seconds', async () => {
    const sleeping = () =>
      withDb(
        async (db) => (await db.query(`select pid from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'`)).rowCount ?? 0,
      );
    const res = await post(stack, { model: 'm', messages: [{ role: 'user', content: callQuery('select pg_sleep(60)') }], tools: dbTools() });
    const runId = res.headers.get('agent-run-id')!;
    const reading = readStream(res);
    await until(async () => (await sleeping()) === 1, 'the query to run in the database');
    const cancelled = Date.now();
    assert.equal((await getJson(stack, `/v1/agents/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
    const stream = await reading;
    assert.deepEqual(
      stream.frames.map((f) => f.event),
      ['message', 'error', 'done'],
    );
    // The activity hears of the cancel with its next (throttled) heartbeat, then closes the connection.
    await until(async () => (await sleeping()) === 0, 'the query to stop in the database', 30_000);
    assert.ok(Date.now() - cancelled < 20_000, `stopped ${Date.now() - cancelled} ms after the cancel`);
  });

  test('a syntax error comes back with its position', async () => {
    const [content] = await toolResults([callQuery('selec * from customers')]);
    assert.equal(
      content,
      queryResult(
        'Error: refused: the statement does not parse: syntax error at or near "selec" (at character 1). Nothing was sent to the database.',
      ),
    );
  });
});

describe('a statement cannot act beyond reading', () => {
  const refusedCall = (name: string) =>
    queryResult(
      `Error: refused: postgres_run_query runs one plain read: SELECT, VALUES, TABLE, EXPLAIN of those, or SHOW; it calls ${name}(), which acts beyond the query (other sessions, locks, files or the server), so it is refused. Nothing was sent to the database.`,
    );

  test('pg_terminate_backend of another session is refused, and that session lives', async () => {
    await withDb(async (other) => {
      const { rows } = await other.query<{ pid: number }>('select pg_backend_pid() as pid');
      const pid = rows[0]!.pid;
      const results = await toolResults([
        callQuery(`select pg_terminate_backend(${pid})`),
        callQuery(`select pg_catalog.pg_cancel_backend(pid) from pg_stat_activity where pid = ${pid}`),
        callQuery(`select * from (select "pg_terminate_backend"(${pid})) as t`),
      ]);
      assert.deepEqual(results, [refusedCall('pg_terminate_backend'), refusedCall('pg_cancel_backend'), refusedCall('pg_terminate_backend')]);
      assert.deepEqual((await other.query('select 1 as alive')).rows, [{ alive: 1 }]);
    });
  });

  test('PREPARE TRANSACTION is refused, and no prepared transaction is left holding locks', async () => {
    const [content] = await toolResults([callQuery(`prepare transaction 'held'`)]);
    assert.equal(
      content,
      queryResult(
        'Error: refused: postgres_run_query runs one plain read: SELECT, VALUES, TABLE, EXPLAIN of those, or SHOW; this is PREPARE TRANSACTION. Nothing was sent to the database.',
      ),
    );
    const admin = await pg.admin('shop');
    try {
      assert.deepEqual((await admin.query('select gid from pg_prepared_xacts')).rows, []);
    } finally {
      await admin.end();
    }
  });

  test('advisory locks are refused in every form, and none is held', async () => {
    const results = await toolResults([
      callQuery('select pg_advisory_lock(42)'),
      callQuery('select pg_try_advisory_lock(42)'),
      callQuery('select pg_advisory_xact_lock_shared(42)'),
    ]);
    assert.deepEqual(results, [refusedCall('pg_advisory_lock'), refusedCall('pg_try_advisory_lock'), refusedCall('pg_advisory_xact_lock_shared')]);
    const admin = await pg.admin('shop');
    try {
      assert.deepEqual((await admin.query(`select objid from pg_locks where locktype = 'advisory'`)).rows, []);
    } finally {
      await admin.end();
    }
  });

  test(`${50} concurrent calls open at most POSTGRES_POOL_SIZE (${POOL_SIZE}) connections; the others wait their turn`, async () => {
    const admin = await pg.admin('shop');
    let most = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where usename = 'analyst'`);
        most = Math.max(most, rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const runs = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          runAgent(stack, { model: 'm', messages: [{ role: 'user', content: callQuery(`select ${i} as n, pg_sleep(0.3)`) }], tools: dbTools() }),
        ),
      );
      const results = runs.map((run) => run.messages.find((m) => m.object === 'tool.completion')?.choices[0].message.content);
      results.forEach((content, i) =>
        assert.equal(content, queryResult(JSON.stringify({ columns: ['n', 'pg_sleep'], rows: [[String(i), '']], row_count: 1, truncated: false }))),
      );
    } finally {
      watching = false;
      await watch;
      await admin.end();
    }
    assert.ok(most > 0, 'no connection was seen');
    assert.ok(most <= POOL_SIZE, `${most} connections were open at once`);
  });
});

describe('attachments and connections', () => {
  test('an attachment the worker has no URL for is a readable error naming the variable', async () => {
    const results = await toolResults(['CALL postgres_get_schema {}', callQuery('select 1')], dbTools('FOLLOWER'));
    const message = 'Error: no database is attached as FOLLOWER: the worker has no FOLLOWER_URL environment variable';
    assert.deepEqual(results, [`Tool 'postgres_get_schema' returned result: ${message}`, queryResult(message)]);
  });

  test('a superuser URL, or a role that may read server files, is refused', async () => {
    const [admin] = await toolResults([callQuery('select 1')], dbTools('ADMIN').slice(1));
    const [reader] = await toolResults([callQuery('select 1')], dbTools('READER').slice(1));
    assert.equal(
      admin,
      queryResult(
        'Error: refusing to use ADMIN_URL: its role is a superuser, so even a read-only transaction could act beyond reading the database (COPY ... TO PROGRAM, or server files). Give ADMIN_URL a role without these privileges.',
      ),
    );
    assert.equal(
      reader,
      queryResult(
        'Error: refusing to use READER_URL: its role may read any file on the server (pg_read_server_files), so even a read-only transaction could act beyond reading the database (COPY ... TO PROGRAM, or server files). Give READER_URL a role without these privileges.',
      ),
    );
  });

  test('db_attachment names only variables holding a postgres:// URL: INFERENCE_URL is not a database', async () => {
    const [content] = await toolResults([callQuery('select 1')], dbTools('INFERENCE'));
    assert.equal(
      content,
      queryResult(
        'Error: INFERENCE is not a database attachment: INFERENCE_URL does not hold a postgres:// or postgresql:// URL, and the database tools use no other variables (POSTGRES_ATTACHMENTS lists those they may use)',
      ),
    );
    assert.ok(!content?.includes(stack.model.url), 'the value of INFERENCE_URL was shown');
  });

  test('roles that may run programs or write files on the server are refused, though no superusers', async () => {
    // Positive control: in a read-only transaction these roles really do escape.
    const escape = async (url: string, statement: string) => {
      const db = new Client({ connectionString: url });
      await db.connect();
      try {
        await db.query('begin transaction read only');
        await db.query(statement);
      } finally {
        await db.end();
      }
    };
    const toProgram = `copy (select 1) to program 'touch ${PROGRAM_MARKER}'`;
    const toFile = `copy (select 1) to '${FILE_MARKER}'`;
    await escape(pg.url('runner', RUNNER_PASSWORD, 'shop'), toProgram);
    await escape(pg.url('writer', WRITER_PASSWORD, 'shop'), toFile);
    assert.ok(fs.existsSync(PROGRAM_MARKER) && fs.existsSync(FILE_MARKER), 'COPY ... TO PROGRAM and TO a file work in a read-only transaction');
    fs.rmSync(PROGRAM_MARKER);
    fs.rmSync(FILE_MARKER);

    // A plain read, so that the role check refuses the session (the parser would refuse COPY by itself).
    const [program] = await toolResults([callQuery('select 1')], dbTools('PROGRAM'));
    const [file] = await toolResults([callQuery('select 1')], dbTools('FILES'));
    const refused = (variable: string, power: string) =>
      queryResult(
        `Error: refusing to use ${variable}: its role ${power}, so even a read-only transaction could act beyond reading the database (COPY ... TO PROGRAM, or server files). Give ${variable} a role without these privileges.`,
      );
    assert.equal(program, refused('PROGRAM_URL', 'may run programs on the server (pg_execute_server_program)'));
    assert.equal(file, refused('FILES_URL', 'may write files on the server (pg_write_server_files)'));
    assert.equal(fs.existsSync(PROGRAM_MARKER), false, 'the program did not run');
    assert.equal(fs.existsSync(FILE_MARKER), false, 'the file was not written');
  });

  test('failed connections name no host, port, user or database', async () => {
    const results = await toolResults([callQuery('select 1')], dbTools('WRONG'));
    results.push(...(await toolResults([callQuery('select 1')], dbTools('NODB'))));
    results.push(...(await toolResults([callQuery('select 1')], dbTools('REFUSED'))));
    assert.deepEqual(results, [
      queryResult(
        'Error: could not connect to the database in WRONG_URL: authentication failed (SQLSTATE 28P01): check the user name and password in WRONG_URL',
      ),
      queryResult('Error: could not connect to the database in NODB_URL: the database named in NODB_URL does not exist (SQLSTATE 3D000)'),
      queryResult(
        'Error: could not connect to the database in REFUSED_URL: the server refused the connection (ECONNREFUSED): nothing listens at the host and port in REFUSED_URL',
      ),
    ]);
    for (const name of ['127.0.0.1', String(pg.port), String(closedPort), 'analyst', 'shop', 'nosuchdb']) {
      assert.ok(!results.join('\n').includes(name), `an error names ${name}`);
    }
  });

  test('a database that never answers times out the connection', async () => {
    const started = Date.now();
    const [content] = await toolResults([callQuery('select 1')], dbTools('SILENT'));
    assert.equal(content, queryResult('Error: could not connect to the database in SILENT_URL: no connection within 10s'));
    // The connect timeout is 10 s; the tool's own ttl (120 s) would be the alternative.
    assert.ok(Date.now() - started < 40_000, `took ${Date.now() - started} ms`);
  });

  test('a db_attachment that is not a config var name is a 400 naming the field', async () => {
    for (const [toolParams, message] of [
      [
        { db_attachment: 'database-url' },
        "tools[0].runtime_params.tool_params.db_attachment must be an attachment name such as DATABASE or HEROKU_POSTGRESQL_RED (upper-case letters, digits and '_', starting with a letter)",
      ],
      [{ db_attachment: 42 }, 'tools[0].runtime_params.tool_params.db_attachment must be a string'],
      [{}, 'tools[0].runtime_params.tool_params.db_attachment is required'],
    ] as const) {
      const res = await runAgent(stack, {
        model: 'm',
        messages: [{ role: 'user', content: 'hi' }],
        tools: [{ type: 'heroku_tool', name: 'postgres_run_query', runtime_params: { tool_params: toolParams } }],
      });
      assert.equal(res.status, 400);
      assert.deepEqual(res.json, { error: { code: 400, message, type: 'invalid_request_error' } });
    }
  });

  test('no database password reaches an event, the workflow history or a log', async () => {
    const secrets = [PASSWORD, encodeURIComponent(PASSWORD), ADMIN_PASSWORD, WRONG_PASSWORD, RUNNER_PASSWORD, WRITER_PASSWORD, url, ...stack.secrets];
    assert.ok(runs.length > 5, 'expected the runs of this file');
    let histories = '';
    for (const run of runs) {
      const runId = run.headers.get('agent-run-id')!;
      histories += await historyText(stack.client, `agent-run-${runId.slice('chatcmpl-'.length)}`);
    }
    assert.ok(histories.includes('read-only transaction'), 'expected the tool results in the histories');
    const events = runs.map((r) => r.raw).join('');
    for (const secret of secrets) {
      assert.equal(events.includes(secret), false, 'a secret reached an event');
      assert.equal(histories.includes(secret), false, 'a secret reached workflow history');
      assert.equal(stack.worker.output.includes(secret), false, 'a secret reached the worker log');
      assert.equal(stack.api.output.includes(secret), false, 'a secret reached the API log');
    }
  });
});
