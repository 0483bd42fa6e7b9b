/**
 * The whole service for a test file, built from real parts: a Temporal dev
 * server (or, with `cluster`, a production server on PostgreSQL configured
 * like docker-compose.yml), the workers and the APIs as separate OS processes
 * (so tests can kill them), and the test doubles of the model API and the
 * Heroku Platform API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { freePort, startDevServer, type DevServer, type DevServerOptions } from '../../dev/dev-server';
import { locateTemporalCli } from '../../dev/temporal-cli';
import { startHerokuPlatform, type HerokuPlatformDouble } from '../doubles/heroku-platform';
import { startModelServer, type ModelServer } from '../doubles/model-server';
import { SEARCH_ATTRIBUTE_KEYS } from '../../contract/search-attributes';
import { startTemporalCluster, type TemporalCluster } from './temporal-cluster';

const ROOT = path.resolve(__dirname, '../..');

/** A second key every stack's API accepts. */
export const OTHER_API_KEY = 'test-other-key-0123456789abcdef';
/** AGENTS_KEY_ID_SECRET of every stack's API. */
export const KEY_ID_SECRET = 'test-key-id-secret-0123456789abcdef';
/** The log lines (JSON, common/log.ts) by which the worker and the API say they are ready. */
export const WORKER_READY = /"msg":"polling task queues /;
export const API_READY = /"msg":"listening on port /;

/** A service process (worker or API) that a test can kill and start again. */
export class ServiceProcess {
  child: ChildProcess | undefined;
  /** Everything the process printed, across restarts (scanned for secrets). */
  output = '';

  constructor(
    readonly name: string,
    private readonly script: string,
    private readonly env: () => NodeJS.ProcessEnv,
    private readonly readyLine: RegExp,
  ) {}

  async start(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, this.script)], {
      cwd: ROOT,
      env: { ...this.env(), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const onData = (buf: Buffer) => {
        const text = buf.toString();
        this.output += text;
        seen += text;
        if (this.readyLine.test(seen)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code, signal) => reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready:\n${seen.slice(-3000)}`)));
    });
  }

  /** SIGKILL by default: a crash, not a shutdown. Resolves once the process is gone, with how it ended. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit | undefined> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
    const gone = new Promise<ProcessExit>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    child.kill(signal);
    return gone;
  }
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StackOptions {
  workerEnv?: NodeJS.ProcessEnv;
  apiEnv?: NodeJS.ProcessEnv;
  /** SQLite file for the Temporal server, so it can be restarted with its runs. */
  persistent?: boolean;
  /** Temporal server dynamic config, e.g. `{ 'limit.historyCount.suggestContinueAsNew': 40 }`. */
  dynamicConfig?: Record<string, unknown>;
  /** With `persistent`: SQLite's `synchronous` (the dev server's default, NORMAL, when unset). */
  sqliteSynchronous?: DevServerOptions['sqliteSynchronous'];
  /** Run on the production Temporal server on PostgreSQL that docker-compose.yml describes (test/support/temporal-cluster.ts). */
  cluster?: boolean;
  /** How many worker and API processes to start (1 each). */
  workers?: number;
  apis?: number;
}

/** The Temporal service under the stack: a dev server or the cluster. */
export interface TemporalService {
  address: string;
  /** Set when the stack runs on the cluster. */
  cluster?: TemporalCluster;
  /** The server's log file (across restarts). */
  logFile: string;
  /** The dev server's process id, now (undefined on the cluster). */
  pid?: () => number | undefined;
  /** SIGKILLs the server and starts it again with its data; `whileDown` runs in between. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface Stack {
  /** The first API's URL (`apiUrls[0]`). */
  apiUrl: string;
  apiUrls: string[];
  apiKey: string;
  model: ModelServer;
  heroku: HerokuPlatformDouble;
  temporal: TemporalService;
  client: Client;
  /** The first worker and API (`workers[0]`, `apis[0]`). */
  worker: ServiceProcess;
  api: ServiceProcess;
  workers: ServiceProcess[];
  apis: ServiceProcess[];
  /** Starts another worker process on the same task queue (stopped with the stack). */
  addWorker(extraEnv?: NodeJS.ProcessEnv): Promise<ServiceProcess>;
  /** Every secret the stack uses, for leak checks. */
  secrets: string[];
  /** PAYLOAD_STORE_DIR of the API and the workers: payloads kept out of history. */
  payloadDir: string;
  /** The Temporal server's log file (across restarts). */
  temporalLog: string;
  /** SIGKILLs the Temporal server and starts it again on the same port and data (a SQLite file needs `persistent`); `whileDown` runs in between. */
  restartTemporal(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** A dev server (SQLite file with `persistent`) as the stack's Temporal service. */
async function devServerService(dir: string, opts: StackOptions): Promise<TemporalService> {
  const serverOptions = {
    cliPath: await locateTemporalCli(),
    port: await freePort(),
    dbFile: opts.persistent ? path.join(dir, 'temporal.db') : undefined,
    searchAttributes: SEARCH_ATTRIBUTE_KEYS,
    logFile: path.join(dir, 'temporal.log'),
    dynamicConfig: opts.dynamicConfig,
    sqliteSynchronous: opts.sqliteSynchronous,
  };
  let server: DevServer = await startDevServer(serverOptions);
  return {
    address: server.address,
    logFile: serverOptions.logFile,
    pid: () => server.process.pid,
    async restart(whileDown) {
      await server.stop('SIGKILL');
      await whileDown?.();
      server = await startDevServer(serverOptions);
    },
    stop: () => server.stop(),
  };
}

async function clusterService(dir: string, opts: StackOptions): Promise<TemporalService> {
  if (opts.dynamicConfig) throw new Error('the cluster takes its dynamic config from deploy/temporal/dynamicconfig.yaml, not from the stack options');
  const cluster = await startTemporalCluster(dir);
  return {
    address: cluster.address,
    cluster,
    logFile: cluster.logFile,
    restart: (whileDown) => cluster.restart(whileDown),
    stop: () => cluster.stop(),
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-stack-'));
  const apiKey = `test-api-key-${randomBytes(12).toString('hex')}`;
  const modelKey = `test-model-key-${Math.random().toString(36).slice(2)}`;
  const herokuToken = `test-heroku-token-${Math.random().toString(36).slice(2)}`;
  const stack = {} as Stack;
  stack.payloadDir = path.join(dir, 'payloads');
  stack.temporal = await (opts.cluster ? clusterService : devServerService)(dir, opts);
  stack.temporalLog = stack.temporal.logFile;
  stack.model = await startModelServer({ key: modelKey });
  stack.heroku = await startHerokuPlatform({ token: herokuToken });

  const baseEnv = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: stack.temporal.address,
    PAYLOAD_STORE_DIR: stack.payloadDir,
  });
  const workerEnv = (): NodeJS.ProcessEnv => ({
    ...baseEnv(),
    INFERENCE_URL: stack.model.url,
    INFERENCE_KEY: modelKey,
    HEROKU_API_KEY: herokuToken,
    HEROKU_API_URL: stack.heroku.url,
    NODE_EXTRA_CA_CERTS: stack.heroku.caFile,
    ...opts.workerEnv,
  });
  const newWorker = () => {
    const worker = new ServiceProcess(`worker ${stack.workers.length + 1}`, 'worker/main.ts', workerEnv, WORKER_READY);
    stack.workers.push(worker);
    return worker;
  };
  stack.workers = [];
  stack.apis = [];
  stack.apiUrls = [];
  for (let i = 0; i < (opts.workers ?? 1); i++) newWorker();
  for (let i = 0; i < (opts.apis ?? 1); i++) {
    const apiPort = await freePort();
    stack.apiUrls.push(`http://127.0.0.1:${apiPort}`);
    stack.apis.push(
      new ServiceProcess(
        `api ${i + 1}`,
        'api/main.ts',
        () => ({
          ...baseEnv(),
          PORT: String(apiPort),
          AGENTS_API_KEYS: `${OTHER_API_KEY},${apiKey}`,
          AGENTS_KEY_ID_SECRET: KEY_ID_SECRET,
          ...opts.apiEnv,
        }),
        API_READY,
      ),
    );
  }
  await Promise.all([...stack.workers, ...stack.apis].map((p) => p.start()));
  stack.addWorker = async (extraEnv) => {
    const worker = newWorker();
    await worker.start(extraEnv);
    return worker;
  };

  // A page of a long run's history can pass gRPC's default 4 MiB; tests read whole histories.
  const connection = await Connection.connect({ address: stack.temporal.address, channelArgs: { 'grpc.max_receive_message_length': 64 * 2 ** 20 } });
  stack.client = new Client({ connection });
  stack.worker = stack.workers[0]!;
  stack.api = stack.apis[0]!;
  stack.apiUrl = stack.apiUrls[0]!;
  stack.apiKey = apiKey;
  stack.secrets = [apiKey, modelKey, herokuToken];
  stack.restartTemporal = (whileDown) => stack.temporal.restart(whileDown);
  stack.stop = async () => {
    await Promise.all([...stack.apis.map((a) => a.kill('SIGTERM')), ...stack.workers.map((w) => w.kill('SIGKILL'))]);
    await connection.close();
    await Promise.all([stack.model.close(), stack.heroku.close(), stack.temporal.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return stack;
}

/**
 * The stack of one test file: started before its tests, stopped after them.
 * `options` may be an async function that first sets up what the stack needs
 * (a database, a registry file): root-level before() hooks of one file may
 * run concurrently, so a separate hook would race the stack's start.
 */
export function useStack(options: StackOptions | (() => StackOptions | Promise<StackOptions>) = {}): Stack {
  let current: Stack | undefined;
  before(async () => {
    current = await startStack(typeof options === 'function' ? await options() : options);
  });
  after(async () => {
    const refused = current?.model.refused ?? [];
    await current?.stop();
    // A conversation a real upstream refuses is a product bug, even where the test only looked at the outcome.
    if (refused.length) throw new Error(`the model double refused ${refused.length} request(s): ${refused.map((r) => r.refusal.message).join('; ')}`);
  });
  const started = (): Stack => {
    if (!current) throw new Error('the stack is not started yet: use it in a test');
    return current;
  };
  return new Proxy({} as Stack, {
    get(_target, key) {
      const value: unknown = Reflect.get(started(), key);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
    // `{ ...stack, apiKey }` copies the started stack's fields.
    ownKeys: () => Reflect.ownKeys(started()),
    getOwnPropertyDescriptor: (_target, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(started(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
  });
}
