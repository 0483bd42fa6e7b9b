/**
 * The systems the bench measures, each behind the same HTTP contract and
 * with the same doubles (model API, Heroku Platform API with its TLS
 * rendezvous and a real `bash`):
 *   - durable-agents as separate API and worker processes (the test stack),
 *     on the in-memory or the SQLite dev server;
 *   - durable-agents as `npm start` runs it (one process: worker + API), with
 *     its embedded SQLite dev server, or against an in-memory one;
 *   - the plain, non-durable loop of bench/plain-loop.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, startDevServer, type DevServer } from '../dev/dev-server';
import { locateTemporalCli } from '../dev/temporal-cli';
import { SEARCH_ATTRIBUTE_KEYS } from '../contract/search-attributes';
import { startHerokuPlatform, type HerokuPlatformDouble } from '../test/doubles/heroku-platform';
import { startModelServer, type ModelServer } from '../test/doubles/model-server';
import { ServiceProcess, startStack } from '../test/support/stack';

export type ServerMode = 'memory' | 'sqlite';
export type Shape = 'separate' | 'all-in-one';

export interface System {
  apiUrl: string;
  apiKey: string;
  model: ModelServer;
  /** The service's processes by role (api, worker, or service for all-in-one), for RSS. */
  pids: Record<string, number>;
  /** The Temporal server the system uses, when there is one the bench started. */
  temporal?: Pick<DevServer, 'address' | 'stop'>;
  /** The Temporal server's process id, when it runs as a process of its own. */
  temporalPid?: number;
  /** Where payloads over 256 KiB are kept (PAYLOAD_STORE_DIR). */
  payloadDir?: string;
  stop(): Promise<void>;
}

const KEY = 'bench-api-key-0123456789abcdef';
const MODEL_KEY = 'bench-model-key';
const HEROKU_TOKEN = 'bench-heroku-token';

/** The doubles and the environment a worker (or the plain loop) needs to reach them. */
async function doubles(): Promise<{ model: ModelServer; heroku: HerokuPlatformDouble; env: NodeJS.ProcessEnv }> {
  const model = await startModelServer({ key: MODEL_KEY });
  const heroku = await startHerokuPlatform({ token: HEROKU_TOKEN });
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    INFERENCE_URL: model.url,
    INFERENCE_KEY: MODEL_KEY,
    HEROKU_API_KEY: HEROKU_TOKEN,
    HEROKU_API_URL: heroku.url,
    NODE_EXTRA_CA_CERTS: heroku.caFile,
  };
  return { model, heroku, env };
}

const pidOf = (p: ServiceProcess): number => {
  if (!p.child?.pid) throw new Error(`${p.name} has no process`);
  return p.child.pid;
};

export async function startOurs(server: ServerMode, shape: Shape, env: NodeJS.ProcessEnv = {}): Promise<System> {
  if (shape === 'separate') {
    const stack = await startStack({ persistent: server === 'sqlite', apiEnv: env, workerEnv: env });
    return {
      apiUrl: stack.apiUrl,
      apiKey: stack.apiKey,
      model: stack.model,
      pids: { api: pidOf(stack.api), worker: pidOf(stack.worker) },
      temporal: stack.temporal,
      temporalPid: stack.temporal.pid?.(),
      payloadDir: stack.payloadDir,
      stop: () => stack.stop(),
    };
  }
  return startAllInOne(server, env);
}

/** `npm start`'s process (service/start.ts): its own embedded SQLite dev server, or an in-memory one we start. */
async function startAllInOne(server: ServerMode, env: NodeJS.ProcessEnv): Promise<System> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agents-bench-'));
  const { model, heroku, env: doubleEnv } = await doubles();
  const temporal =
    server === 'memory' ? await startDevServer({ cliPath: await locateTemporalCli(), searchAttributes: SEARCH_ATTRIBUTE_KEYS }) : undefined;
  const port = await freePort();
  const devPort = await freePort();
  const service = new ServiceProcess(
    'npm start',
    'service/start.ts',
    () => ({
      ...doubleEnv,
      DATA_DIR: dir,
      PORT: String(port),
      AGENTS_API_KEYS: KEY,
      TEMPORAL_DEV_PORT: String(devPort),
      TEMPORAL_UI_PORT: String(devPort + 1),
      ...(temporal ? { TEMPORAL_ADDRESS: temporal.address } : {}),
      ...env,
    }),
    /API listening/,
  );
  await service.start();
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    apiKey: KEY,
    model,
    pids: { service: pidOf(service) },
    temporal,
    temporalPid: temporal?.process.pid,
    payloadDir: path.join(dir, 'payloads'),
    stop: async () => {
      await service.kill('SIGTERM');
      await Promise.all([model.close(), heroku.close(), temporal?.stop()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The non-durable floor: bench/plain-loop.ts with the same doubles. */
export async function startPlain(env: NodeJS.ProcessEnv = {}): Promise<System> {
  const { model, heroku, env: doubleEnv } = await doubles();
  const port = await freePort();
  const plain = new ServiceProcess('plain loop', 'bench/plain-loop.ts', () => ({ ...doubleEnv, PORT: String(port), ...env }), /plain: listening/);
  await plain.start();
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    apiKey: KEY,
    model,
    pids: { plain: pidOf(plain) },
    stop: async () => {
      await plain.kill('SIGTERM');
      await Promise.all([model.close(), heroku.close()]);
    },
  };
}

/** Resident set size of a process in bytes (Linux), or NaN once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
