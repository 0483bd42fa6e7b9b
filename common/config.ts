/**
 * The settings of each process (docs/api.md#part-c-configuration), read from
 * the environment once, at start, through the validators of ./env: a bad
 * value stops the process with a message naming the variable. Nothing writes
 * to process.env. Secrets stay in the process that reads them: none of these
 * values may be passed to a workflow.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { dir, httpUrl, list, oneOf, optional, port, positiveInt, type Env } from './env';
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
  /** How many tool calls of one model reply a run runs at once (MAX_PARALLEL_TOOL_CALLS). */
  parallelToolCalls: number;
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
    parallelToolCalls: positiveInt(env, 'MAX_PARALLEL_TOOL_CALLS', 4),
  };
}

export type SandboxMode = 'bubblewrap' | 'none';

export interface WorkerConfig {
  /** INFERENCE_URL (without `/v1`) and INFERENCE_KEY. */
  inference: { url: string; key: string };
  /** Set when HEROKU_API_KEY is: then tools that name an app run in one-off dynos. */
  heroku?: { token: string; apiUrl: string };
  /** TOOL_SANDBOX, and the worker's PATH (where bwrap and the runtimes are looked up). */
  sandbox: { mode: SandboxMode; workerPath: string };
  /** FETCH_ALLOW_HOSTS, parsed. */
  fetchAllowHosts: AllowEntry[];
  /** MCP_SERVERS: the MCP server registry file, if any. */
  mcpServersFile?: string;
  payloadStoreDir: string;
  /** `<ATTACHMENT>_URL` for `db_attachment` ATTACHMENT: the database tools get this look-up, not the environment. */
  databaseUrl: (attachment: string) => string | undefined;
  /** Model calls this worker runs at once (MAX_CONCURRENT_MODEL_CALLS): they wait on the network. */
  modelCallSlots: number;
  /** Tool calls this worker runs at once (MAX_CONCURRENT_TOOL_CALLS): sandboxed ones take CPU. */
  toolCallSlots: number;
  /** Conversations of model calls kept in memory (CONVERSATION_CACHE_MB), so each call is given only new messages. */
  conversationCacheBytes: number;
}

/** The variable that holds the database URL of a `db_attachment`, as Heroku names config vars. */
export const attachmentVariable = (attachment: string): string => `${attachment}_URL`;

export function workerConfig(env: Env = process.env): WorkerConfig {
  const herokuToken = optional(env, 'HEROKU_API_KEY');
  return {
    inference: { url: httpUrl(env, 'INFERENCE_URL', 'http://127.0.0.1:11434'), key: optional(env, 'INFERENCE_KEY') ?? '' },
    heroku: herokuToken ? { token: herokuToken, apiUrl: httpUrl(env, 'HEROKU_API_URL', 'https://api.heroku.com') } : undefined,
    sandbox: { mode: oneOf(env, 'TOOL_SANDBOX', ['bubblewrap', 'none'], 'bubblewrap'), workerPath: env.PATH ?? '' },
    fetchAllowHosts: list(env, 'FETCH_ALLOW_HOSTS').map(parseAllowEntry),
    mcpServersFile: optional(env, 'MCP_SERVERS'),
    payloadStoreDir: payloadStoreDir(env),
    databaseUrl: (attachment) => optional(env, attachmentVariable(attachment)),
    modelCallSlots: positiveInt(env, 'MAX_CONCURRENT_MODEL_CALLS', 200),
    toolCallSlots: positiveInt(env, 'MAX_CONCURRENT_TOOL_CALLS', 50),
    conversationCacheBytes: positiveInt(env, 'CONVERSATION_CACHE_MB', 64) * 2 ** 20,
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
