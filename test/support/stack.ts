/**
 * The whole service for a test file, built from real parts: a Temporal dev
 * server, the worker and the API as separate OS processes (so tests can kill
 * them), and the test doubles of the model API and the Heroku Platform API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { freePort, startDevServer, type DevServer } from '../../dev/dev-server';
import { locateTemporalCli } from '../../dev/temporal-cli';
import { startHerokuPlatform, type HerokuPlatformDouble } from '../doubles/heroku-platform';
import { startModelServer, type ModelServer } from '../doubles/model-server';
import { SEARCH_ATTRIBUTE_KEYS } from '../../contract/search-attributes';

const ROOT = path.resolve(__dirname, '../..');

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
}

export interface Stack {
  apiUrl: string;
  apiKey: string;
  model: ModelServer;
  heroku: HerokuPlatformDouble;
  temporal: DevServer;
  client: Client;
  worker: ServiceProcess;
  api: ServiceProcess;
  /** Starts another worker process on the same task queue (stopped with the stack). */
  addWorker(extraEnv?: NodeJS.ProcessEnv): Promise<ServiceProcess>;
  /** Every secret the stack uses, for leak checks. */
  secrets: string[];
  /** PAYLOAD_STORE_DIR of the API and the workers: payloads kept out of history. */
  payloadDir: string;
  /** SIGKILLs the Temporal server and starts it again on the same port and SQLite file; `whileDown` runs in between. */
  restartTemporal(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-stack-'));
  const apiKey = `test-api-key-${Math.random().toString(36).slice(2)}`;
  const modelKey = `test-model-key-${Math.random().toString(36).slice(2)}`;
  const herokuToken = `test-heroku-token-${Math.random().toString(36).slice(2)}`;
  const cliPath = await locateTemporalCli();
  const temporalPort = await freePort();
  const serverOptions = {
    cliPath,
    port: temporalPort,
    dbFile: opts.persistent ? path.join(dir, 'temporal.db') : undefined,
    searchAttributes: SEARCH_ATTRIBUTE_KEYS,
    logFile: path.join(dir, 'temporal.log'),
    dynamicConfig: opts.dynamicConfig,
  };
  const stack = {} as Stack;
  stack.payloadDir = path.join(dir, 'payloads');
  stack.temporal = await startDevServer(serverOptions);
  stack.model = await startModelServer({ key: modelKey });
  stack.heroku = await startHerokuPlatform({ token: herokuToken });
  const apiPort = await freePort();

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
  const newWorker = (name: string) => new ServiceProcess(name, 'worker/main.ts', workerEnv, /worker: polling/);
  stack.worker = newWorker('worker');
  const extraWorkers: ServiceProcess[] = [];
  stack.addWorker = async (extraEnv) => {
    const worker = newWorker(`worker ${extraWorkers.length + 2}`);
    extraWorkers.push(worker);
    await worker.start(extraEnv);
    return worker;
  };
  stack.api = new ServiceProcess(
    'api',
    'api/main.ts',
    () => ({ ...baseEnv(), PORT: String(apiPort), AGENTS_API_KEYS: `other-key,${apiKey}`, ...opts.apiEnv }),
    /api: listening/,
  );
  await Promise.all([stack.worker.start(), stack.api.start()]);

  const connection = await Connection.connect({ address: stack.temporal.address });
  stack.client = new Client({ connection });
  stack.apiUrl = `http://127.0.0.1:${apiPort}`;
  stack.apiKey = apiKey;
  stack.secrets = [apiKey, modelKey, herokuToken];
  stack.restartTemporal = async (whileDown) => {
    await stack.temporal.stop('SIGKILL');
    await whileDown?.();
    stack.temporal = await startDevServer(serverOptions);
  };
  stack.stop = async () => {
    await Promise.all([stack.api.kill('SIGTERM'), ...[stack.worker, ...extraWorkers].map((w) => w.kill('SIGKILL'))]);
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
    await current?.stop();
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
