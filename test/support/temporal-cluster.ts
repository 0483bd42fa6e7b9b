/**
 * A production Temporal server for the cluster tier and the load test,
 * configured by the files docker-compose.yml uses: the server compose runs
 * (`temporal-server start`, built from source at compose's image tag by
 * dev/temporal-server.ts) with the environment of compose's `temporal`
 * service, on a throwaway PostgreSQL cluster for persistence and visibility;
 * the schema set up by compose's `temporal-schema` job and the namespace and
 * search attributes by its `temporal-setup` job, i.e. the same
 * deploy/temporal/*.sh scripts, run with `sh` and the binaries the admin-tools
 * image would bring (`temporal-sql-tool`, `temporal`) on PATH.
 *
 * Only addresses differ from compose: everything listens on 127.0.0.1, on free
 * ports (every port is a variable of the server's config template).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { locateTemporalCli } from '../../dev/temporal-cli';
import { locateTemporalServer, type TemporalServerBuild } from '../../dev/temporal-server';
import { composeService } from './compose';
import { startPostgres, type TestPostgres } from './postgres';

export interface TemporalCluster {
  /** `127.0.0.1:<port>` of the frontend. */
  address: string;
  /** The namespace compose's setup job created (TEMPORAL_NAMESPACE's default). */
  namespace: string;
  postgres: TestPostgres;
  /** The server's log (across restarts). */
  logFile: string;
  /** The running server's pid, if it runs. */
  serverPid(): number | undefined;
  /** Runs the `temporal` CLI against the cluster; resolves with its stdout, rejects with its output when it fails. */
  cli(args: string[]): Promise<string>;
  /** SIGKILLs the server and starts it again on the same ports and database; `whileDown` runs in between. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * PostgreSQL's default of 100 connections is too few: one server process holds
 * up to 20 (persistence) + 10 (visibility) per service, 120 for all four.
 */
const MAX_CONNECTIONS = 300;
const READY_WITHIN_MS = 120_000;
/** setup-namespace.sh retries each step for up to 2 minutes. */
const SETUP_WITHIN_MS = 300_000;

/** The server's listeners: each is a variable of its config template (see the image's config_template.yaml). */
const PORT_VARIABLES = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

/**
 * A free 127.0.0.1 port below 32768. The server keeps its membership ports in
 * a PostgreSQL smallint, and the kernel's ephemeral ports (what port 0 gives)
 * lie above that.
 */
async function freeLowPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port between 20000 and 32000 on 127.0.0.1');
}

/** Runs `argv` to completion; rejects with its output when it fails or outlives `ms`. */
function run(argv: string[], env: NodeJS.ProcessEnv, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), (output += d)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${argv.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim().slice(-3000)}`));
    });
  });
}

/** The argv of a one-shot compose job (`/bin/sh /setup/x.sh`) with its script taken from this repository. */
function jobArgv(job: ReturnType<typeof composeService>): string[] {
  const [shell, script, ...rest] = job.argv;
  if (shell !== '/bin/sh' || !script) throw new Error(`compose service ${job.name} no longer runs '/bin/sh <script>': update the cluster tier`);
  return ['sh', job.hostPath(script), ...rest];
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n').slice(-4000);
  } catch {
    return '';
  }
}

export async function startTemporalCluster(dir: string): Promise<TemporalCluster> {
  const [build, cliPath] = await Promise.all([locateTemporalServer(), locateTemporalCli()]);
  const schemaJob = composeService('temporal-schema');
  const server = composeService('temporal');
  const setupJob = composeService('temporal-setup');
  for (const job of [schemaJob, setupJob]) {
    if (job.imageTag !== build.version) {
      throw new Error(`docker-compose.yml runs ${job.name} from admin-tools ${job.imageTag} but the server is ${build.version}: use one version`);
    }
  }

  const postgres = await startPostgres({ max_connections: MAX_CONNECTIONS });
  try {
    return await startOn(postgres, build, cliPath, { schemaJob, server, setupJob }, dir);
  } catch (err) {
    await postgres.stop();
    throw err;
  }
}

async function startOn(
  postgres: TestPostgres,
  build: TemporalServerBuild,
  cliPath: string,
  compose: Record<'schemaJob' | 'server' | 'setupJob', ReturnType<typeof composeService>>,
  dir: string,
): Promise<TemporalCluster> {
  const { schemaJob, server, setupJob } = compose;
  const db = server.environment;
  // Compose's postgres image makes POSTGRES_USER a superuser; the schema tool needs only CREATEDB.
  const admin = await postgres.admin();
  try {
    await admin.query(`CREATE ROLE ${admin.escapeIdentifier(db.POSTGRES_USER!)} LOGIN CREATEDB PASSWORD ${admin.escapeLiteral(db.POSTGRES_PWD!)}`);
  } finally {
    await admin.end();
  }
  const dbAddress = { POSTGRES_SEEDS: '127.0.0.1', DB_PORT: String(postgres.port) };
  const withPath = (binDir: string) => `${binDir}${path.delimiter}${process.env.PATH ?? ''}`;

  await run(
    jobArgv(schemaJob),
    { ...schemaJob.environment, ...dbAddress, TEMPORAL_SCHEMA_DIR: build.schemaDir, PATH: withPath(path.dirname(build.sqlTool)) },
    SETUP_WITHIN_MS,
  );

  const ports: Record<string, string> = {};
  for (const name of PORT_VARIABLES) {
    let port: number;
    do port = await freeLowPort();
    while (Object.values(ports).includes(String(port)));
    ports[name] = String(port);
  }
  const address = `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`;
  const dynamicConfig = server.hostPath(server.environment.DYNAMIC_CONFIG_FILE_PATH!);
  const serverEnv = {
    PATH: process.env.PATH,
    ...server.environment,
    ...dbAddress,
    ...ports,
    BIND_ON_IP: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: dynamicConfig,
  };
  const check = await run([build.server, 'validate-dynamic-config', dynamicConfig], serverEnv, 30_000);
  if (/error:/.test(check)) throw new Error(`${dynamicConfig} is not a valid dynamic config:\n${check}`);

  const logFile = path.join(dir, 'temporal-server.log');
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || exited(c)) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  };

  // The image's entrypoint runs `temporal-server start`: the config template filled from the environment.
  const startServer = async () => {
    const log = fs.openSync(logFile, 'a');
    child = spawn(build.server, ['start'], { env: serverEnv, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      if (exited(child)) throw new Error(`temporal-server exited (${child.exitCode ?? child.signalCode}) while starting:\n${tail(logFile)}`);
      if (Date.now() > deadline) throw new Error(`temporal-server did not serve on ${address} within ${READY_WITHIN_MS} ms:\n${tail(logFile)}`);
      const connection = await Connection.connect({ address, connectTimeout: '2s' }).catch(() => undefined);
      try {
        if (
          connection &&
          (await connection.workflowService.getSystemInfo({}).then(
            () => true,
            () => false,
          ))
        )
          return;
      } finally {
        await connection?.close();
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const cli = (args: string[]) => run([cliPath, '--address', address, ...args], { PATH: process.env.PATH, HOME: process.env.HOME }, 60_000);
  try {
    await startServer();
    await run(
      jobArgv(setupJob),
      { HOME: process.env.HOME, ...setupJob.environment, TEMPORAL_ADDRESS: address, PATH: withPath(path.dirname(cliPath)) },
      SETUP_WITHIN_MS,
    );
  } catch (err) {
    await kill('SIGKILL');
    throw err;
  }

  return {
    address,
    namespace: setupJob.environment.TEMPORAL_NAMESPACE ?? 'default',
    postgres,
    logFile,
    serverPid: () => (child && !exited(child) ? child.pid : undefined),
    cli,
    async restart(whileDown) {
      await kill('SIGKILL');
      await whileDown?.();
      await startServer();
    },
    async stop() {
      await kill('SIGTERM');
      process.removeListener('exit', killOnExit);
      await postgres.stop();
    },
  };
}
