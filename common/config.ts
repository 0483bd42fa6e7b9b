/**
 * The settings of each process (docs/api.md#part-c-configuration), read from
 * the environment once, at start, through the validators of ./env: a bad
 * value stops the process with a message naming the variable. Nothing writes
 * to process.env. Secrets stay in the process that reads them: none of these
 * values may be passed to a workflow.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { availableParallelism } from 'node:os';
import { ConfigError } from './errors';
import { decimal, dir, httpUrl, list, oneOf, optional, port, positiveInt, type Env } from './env';
import { parseAllowEntry, type AllowEntry } from './host-list';

export interface TemporalConfig {
  address: string;
  namespace: string;
  /** Options for Connection.connect / NativeConnection.connect (TLS, API key, ...). */
  connectionOptions: ReturnType<typeof loadClientConnectConfig>['connectionOptions'];
}

/** TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*: Temporal's own loader. */
export function temporalConfig(env: Env = process.env): TemporalConfig {
  const { connectionOptions, namespace } = loadClientConnectConfig({
    overrideEnvVars: env as Record<string, string>,
    disableFile: !env.TEMPORAL_CONFIG_FILE,
  });
  const address = connectionOptions.address ?? 'localhost:7233';
  return { address, namespace: namespace ?? 'default', connectionOptions: { ...connectionOptions, address } };
}

/** PAYLOAD_STORE_DIR, by default `$DATA_DIR/payloads`: the API and every worker must share it. */
function payloadStoreDir(env: Env): string {
  return dir(env, 'PAYLOAD_STORE_DIR', `${dir(env, 'DATA_DIR', '.data')}/payloads`);
}

export interface ApiConfig {
  port: number;
  /** Bearer keys the API accepts; the API refuses to start without one. */
  apiKeys: string[];
  maxModelCalls: number;
  /** Models a request may name; empty means any. */
  allowedModels: string[];
  /** Used instead of a model the allow-list refuses. */
  defaultModel?: string;
  maxBodyBytes: number;
  /** Interval of `:keep-alive` comments on open streams. */
  keepAliveMs: number;
  /** MCP_SERVERS: the MCP server registry file, if any. */
  mcpServersFile?: string;
  /** Largest `ttl_seconds` an mcp tool may ask for (MCP_MAX_TTL_SECONDS). */
  mcpMaxTtlSeconds: number;
  payloadStoreDir: string;
}

export function apiConfig(env: Env = process.env): ApiConfig {
  return {
    port: port(env, 'PORT', 3000),
    apiKeys: list(env, 'AGENTS_API_KEYS'),
    maxModelCalls: positiveInt(env, 'MAX_MODEL_CALLS_PER_RUN', 25),
    allowedModels: list(env, 'ALLOWED_MODELS'),
    defaultModel: optional(env, 'INFERENCE_MODEL_ID'),
    maxBodyBytes: positiveInt(env, 'MAX_REQUEST_BYTES', 1024 * 1024),
    keepAliveMs: positiveInt(env, 'SSE_KEEPALIVE_MS', 15_000),
    mcpServersFile: optional(env, 'MCP_SERVERS'),
    mcpMaxTtlSeconds: positiveInt(env, 'MCP_MAX_TTL_SECONDS', 120),
    payloadStoreDir: payloadStoreDir(env),
  };
}

export type SandboxMode = 'bubblewrap' | 'none';

/** Per-call bounds of the local sandbox (README "Security"). */
export interface SandboxLimits {
  /**
   * SANDBOX_LIMITS: on (the default), a sandboxed call runs only inside its
   * own cgroup with every limit below written; off is the explicit, logged
   * opt-out for hosts where they cannot be set.
   */
  enforced: boolean;
  /** SANDBOX_MEMORY_MB: memory of all the call's processes together, its /tmp included. */
  memoryBytes: number;
  /** SANDBOX_PIDS: processes and threads of the call at once. */
  pids: number;
  /** SANDBOX_CPUS: CPU time per wall-clock time (1 = one CPU). */
  cpus: number;
  /** SANDBOX_TMP_MB: size of the call's /tmp (a tmpfs). */
  tmpBytes: number;
  /** SANDBOX_MAX_CONCURRENT: sandboxed calls running at once on this worker; more wait for a slot. */
  maxConcurrent: number;
}

export interface SandboxConfig {
  /** TOOL_SANDBOX. */
  mode: SandboxMode;
  /** The worker's PATH: where bwrap is looked up (the sandbox's own PATH is fixed). */
  workerPath: string;
  limits: SandboxLimits;
}

const MIB = 1024 * 1024;

function sandboxConfig(env: Env): SandboxConfig {
  const limits: SandboxLimits = {
    enforced: oneOf(env, 'SANDBOX_LIMITS', ['on', 'off'], 'on') === 'on',
    memoryBytes: positiveInt(env, 'SANDBOX_MEMORY_MB', 1024) * MIB,
    pids: positiveInt(env, 'SANDBOX_PIDS', 128),
    // The kernel's smallest CFS quota is 1 ms per 100 ms period.
    cpus: decimal(env, 'SANDBOX_CPUS', 1, 0.01),
    tmpBytes: positiveInt(env, 'SANDBOX_TMP_MB', 256) * MIB,
    maxConcurrent: positiveInt(env, 'SANDBOX_MAX_CONCURRENT', availableParallelism()),
  };
  if (limits.tmpBytes >= limits.memoryBytes) {
    throw new ConfigError(
      `SANDBOX_TMP_MB (${limits.tmpBytes / MIB}) must be less than SANDBOX_MEMORY_MB (${limits.memoryBytes / MIB}): what a call keeps in /tmp counts against its memory`,
    );
  }
  return { mode: oneOf(env, 'TOOL_SANDBOX', ['bubblewrap', 'none'], 'bubblewrap'), workerPath: env.PATH ?? '', limits };
}

export interface WorkerConfig {
  /** INFERENCE_URL (without `/v1`), INFERENCE_KEY (empty: none), and how long the start-up check waits for an answer. */
  inference: { url: string; key: string; checkTimeoutMs: number };
  /** Set when HEROKU_API_KEY is: then tools that name an app run in one-off dynos. */
  heroku?: { token: string; apiUrl: string };
  sandbox: SandboxConfig;
  /** FETCH_ALLOW_HOSTS, parsed. */
  fetchAllowHosts: AllowEntry[];
  /** MCP_SERVERS: the MCP server registry file, if any. */
  mcpServersFile?: string;
  payloadStoreDir: string;
  /** `<ATTACHMENT>_URL` for `db_attachment` ATTACHMENT: the database tools get this look-up, not the environment. */
  databaseUrl: (attachment: string) => string | undefined;
}

/** The variable that holds the database URL of a `db_attachment`, as Heroku names config vars. */
export const attachmentVariable = (attachment: string): string => `${attachment}_URL`;

export function workerConfig(env: Env = process.env): WorkerConfig {
  const herokuToken = optional(env, 'HEROKU_API_KEY');
  return {
    inference: {
      url: httpUrl(env, 'INFERENCE_URL', 'http://127.0.0.1:11434'),
      key: optional(env, 'INFERENCE_KEY') ?? '',
      checkTimeoutMs: positiveInt(env, 'INFERENCE_CHECK_TIMEOUT_MS', 3_000),
    },
    heroku: herokuToken ? { token: herokuToken, apiUrl: httpUrl(env, 'HEROKU_API_URL', 'https://api.heroku.com') } : undefined,
    sandbox: sandboxConfig(env),
    fetchAllowHosts: list(env, 'FETCH_ALLOW_HOSTS').map(parseAllowEntry),
    mcpServersFile: optional(env, 'MCP_SERVERS'),
    payloadStoreDir: payloadStoreDir(env),
    databaseUrl: (attachment) => optional(env, attachmentVariable(attachment)),
  };
}

/** What `npm start` adds: the data folder and, unless TEMPORAL_ADDRESS names a service, the embedded dev server. */
export interface ServiceConfig {
  dataDir: string;
  /** Unset TEMPORAL_ADDRESS: run an embedded Temporal dev server on these ports. */
  embeddedTemporal?: { port: number; uiPort: number; cliPath?: string };
}

export function serviceConfig(env: Env = process.env): ServiceConfig {
  const devPort = port(env, 'TEMPORAL_DEV_PORT', 7233);
  return {
    dataDir: dir(env, 'DATA_DIR', '.data'),
    embeddedTemporal: optional(env, 'TEMPORAL_ADDRESS')
      ? undefined
      : { port: devPort, uiPort: port(env, 'TEMPORAL_UI_PORT', devPort + 1000), cliPath: optional(env, 'TEMPORAL_CLI_PATH') },
  };
}
