/**
 * Development tooling: runs `temporal server start-dev` (the Temporal dev
 * server embedded in the Temporal CLI, see ./temporal-cli.ts) as a child
 * process and waits until it serves. `npm start` embeds it when no
 * TEMPORAL_ADDRESS is set; the tests run their own.
 *
 * We spawn it ourselves rather than through `@temporalio/testing`'s
 * TestWorkflowEnvironment (a dev dependency, used for activity tests only): it
 * waits only 5 s for the server to come up, and `npm start` needs the server
 * without the test package.
 *
 * Persistence: with `dbFile` the server keeps its state in SQLite and runs
 * survive a restart on the same file. Caveat handled here: the CLI registers
 * `--search-attribute`s only while *creating* a namespace, and on a restart it
 * leaves existing namespaces alone; attributes added to the list since the file
 * was created would silently be missing. So after start-up each namespace gets
 * the missing ones through common/search-attributes.ts (a type mismatch with an
 * already registered attribute is an error).
 *
 * Durability of the SQLite file: WAL with `synchronous=NORMAL`. A crash of any
 * process (the server's included) loses nothing it committed; a power loss or
 * an operating-system crash may lose the last transactions before it, and the
 * file stays consistent. `OFF` may leave a corrupt file after a power loss
 * (README, Durability, has what each costs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { AppError } from '../common/errors';
import { freePort } from '../common/free-port';
import { ensureSearchAttributes, SearchAttributeError } from '../common/search-attributes';

/**
 * Server settings that cut the round trips of an agent step; the same ones are
 * in deploy/temporal/dynamicconfig.yaml for a real server (a unit test holds
 * the two together). Each saves a hop a step would otherwise wait for:
 * - eager activity execution: an activity scheduled by a workflow task comes
 *   back in the answer to that task's completion, instead of through matching;
 * - one task-queue partition: with the default four, a task and the poller
 *   waiting for it may sit in different partitions and meet only after a
 *   (rate-limited) forward to the root partition;
 * - the history service reads each new task (a workflow task after an
 *   activity completed, an activity after a workflow task) from its transfer
 *   queue at up to 1000 reads a second instead of 20: at 20 every workflow
 *   task of a step waited 20-35 ms in that queue before it was dispatched
 *   (floor first event 100 -> 48 ms; the reads happen only when tasks arrive);
 * - no forced search-attribute cache refresh: the CLI's dev server re-reads
 *   the cluster metadata on every search-attribute read unless told otherwise.
 *   Safe once ours are registered (startDevServer restarts the server once
 *   when it had to add any, so the cache starts with them).
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'system.enableActivityEagerExecution': true,
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
  'history.transferProcessorMaxPollRPS': 1000,
  'system.forceSearchAttributesCacheRefreshOnRead': false,
  // Our streams long-poll the run with an Update that waits up to 20 s (api/run-feeds.ts). The
  // server logs every call slower than this threshold as a warning, and it counts such an Update
  // as slow (it exempts only its own Poll* calls), so it would warn every 20 s while a client watches.
  'rpc.slowRequestLoggingThreshold': '1m',
};

export { freePort };

interface SearchAttributeKey {
  name: string;
  type: SearchAttributeType;
}

export interface DevServerOptions {
  /** Path of the `temporal` binary (see `locateTemporalCli()`). */
  cliPath: string;
  /** SQLite file for persistence (parent folder created); omit for in-memory. */
  dbFile?: string;
  /** gRPC frontend port; default: a free port. */
  port?: number;
  /** Web UI port; default: 8233 when `port` is 7233, else headless. `false`: headless. */
  uiPort?: number | false;
  /** IP to bind; default 127.0.0.1. */
  ip?: string;
  /** Extra namespace to create (`default` always exists). */
  namespace?: string;
  /** Custom search attributes to register on every namespace (contract/search-attributes.ts's keys). */
  searchAttributes?: readonly SearchAttributeKey[];
  /** Append the server's stdout/stderr to this file (parent folder created). */
  logFile?: string;
  /** How long to wait for the server to serve; default 60 000 ms. */
  startTimeoutMs?: number;
  /** Server dynamic config (`--dynamic-config-value KEY=JSON`) over DEV_SERVER_DYNAMIC_CONFIG, e.g. a low `limit.historyCount.suggestContinueAsNew`. */
  dynamicConfig?: Record<string, unknown>;
  /** SQLite's `synchronous` for `dbFile`; default NORMAL (see above). */
  sqliteSynchronous?: 'OFF' | 'NORMAL' | 'FULL';
}

export interface DevServer {
  /** `host:port` of the gRPC frontend, for `Connection.connect({ address })`. */
  address: string;
  /** Web UI URL, unless headless. */
  uiUrl?: string;
  process: ChildProcess;
  /** Sends `signal` (default SIGTERM; SIGKILL after 10 s) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The type names `temporal server start-dev --search-attribute Name=Type` takes. */
const CLI_TYPE: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tcpReachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

class EarlyExit extends AppError {}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  // A port we picked ourselves may be taken between freePort() and the
  // server's bind: retry those with a new port.
  const attempts = opts.port === undefined ? 3 : 1;
  for (let i = 1; ; i++) {
    const port = opts.port ?? (await freePort(opts.ip ?? '127.0.0.1'));
    try {
      return await startOnce(opts, port);
    } catch (err) {
      if (i >= attempts || !(err instanceof EarlyExit) || !/port/i.test(err.message)) throw err;
    }
  }
}

function assertPortFree(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EarlyExit(`${what} port ${hostPort(host, port)} is not free (${err.code ?? err.message})`)),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

async function startOnce(opts: DevServerOptions, port: number): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const connectHost = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  const uiPort = opts.uiPort === undefined ? (port === 7233 ? 8233 : false) : opts.uiPort;
  // Otherwise the readiness probe below could be answered by whatever server
  // already holds the port, while ours exits with "can't set frontend port".
  await assertPortFree(ip, port, 'Temporal frontend');
  if (uiPort !== false) await assertPortFree(ip, uiPort, 'Temporal Web UI');
  const namespaces = ['default', ...(opts.namespace && opts.namespace !== 'default' ? [opts.namespace] : [])];

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port)];
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (uiPort === false) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const key of opts.searchAttributes ?? []) {
    args.push('--search-attribute', `${key.name}=${CLI_TYPE[key.type]}`);
  }
  const dynamicConfig = { ...DEV_SERVER_DYNAMIC_CONFIG, ...opts.dynamicConfig };
  for (const [key, value] of Object.entries(dynamicConfig)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  args.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', `synchronous=${opts.sqliteSynchronous ?? 'NORMAL'}`);
  args.push('--log-level', 'warn');

  let logStream: fs.WriteStream | undefined;
  if (opts.logFile) {
    fs.mkdirSync(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    logStream = fs.createWriteStream(opts.logFile, { flags: 'a' });
    logStream.write(`\n--- ${new Date().toISOString()} ${opts.cliPath} ${args.join(' ')}\n`);
  }

  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const onOutput = (buf: Buffer) => {
    logStream?.write(buf);
    tail = (tail + buf.toString('utf8')).slice(-4000);
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);

  // Never leave an orphaned server behind if this process exits without stop().
  const killOnParentExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnParentExit);

  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      process.removeListener('exit', killOnParentExit);
      resolve();
    });
    child.once('error', (err) => {
      tail += `\n${err.message}`;
      exited = true;
      resolve();
    });
  });
  // Flush the log and end the stream once stdio has closed.
  child.once('close', () => logStream?.end());

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!exited && child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 10_000);
      await exitPromise;
      clearTimeout(timer);
    }
  };

  const earlyExit = () =>
    new EarlyExit(
      `temporal server start-dev exited early (code ${child.exitCode}, signal ${child.signalCode}):\n` +
        tail.trim().split('\n').slice(-20).join('\n'),
    );

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  const address = hostPort(connectHost, port);
  try {
    // 1. Wait for the frontend port to accept TCP connections.
    while (!(await tcpReachable(connectHost, port))) {
      if (exited) throw earlyExit();
      if (Date.now() > deadline) throw new AppError(`Temporal dev server did not listen on ${address} in time`);
      await sleep(100);
    }
    // 2. Wait until it answers for every namespace, then reconcile search attributes.
    let lastErr: unknown;
    const added: string[] = [];
    for (;;) {
      if (exited) throw earlyExit();
      if (Date.now() > deadline) {
        throw new AppError(`Temporal dev server at ${address} did not become ready in time: ${String(lastErr)}`, { cause: lastErr });
      }
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address, connectTimeout: '5s' });
        await connection.workflowService.getSystemInfo({});
        for (const namespace of namespaces) {
          await connection.workflowService.describeNamespace({ namespace });
        }
        lastErr = undefined;
        for (const namespace of namespaces) {
          if (opts.searchAttributes?.length) added.push(...(await ensureSearchAttributes(connection, namespace, opts.searchAttributes)));
        }
        if (exited) throw earlyExit();
        break;
      } catch (err) {
        if (err instanceof SearchAttributeError || err instanceof EarlyExit) throw err;
        lastErr = err;
        await sleep(250);
      } finally {
        await connection?.close().catch(() => undefined);
      }
    }
    // Its search-attribute cache, if not refreshed on every read, started without the ones just added.
    if (added.length && !dynamicConfig['system.forceSearchAttributesCacheRefreshOnRead']) {
      await stop();
      return await startOnce(opts, port);
    }
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }

  return {
    address,
    uiUrl: uiPort === false ? undefined : `http://${hostPort(connectHost, uiPort)}`,
    process: child,
    stop,
  };
}
