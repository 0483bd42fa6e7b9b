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
import { decimal, dir, httpUrl, keyList, list, oneOf, optional, port, positiveInt, secret, type Env } from './env';
import { parseAllowEntry, type AllowEntry } from './host-list';
import type { TracingConfig } from './tracing';

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

/** How large a JSON Schema from a request may be, and how many compiled ones are kept (catalog/json-schema.ts). */
export interface ToolSchemaLimits {
  /** TOOL_SCHEMA_MAX_BYTES: the schema's size as JSON. */
  maxBytes: number;
  /** TOOL_SCHEMA_MAX_DEPTH: how deeply its objects and arrays may nest. */
  maxDepth: number;
  /** TOOL_SCHEMA_CACHE_SIZE: compiled validators kept. */
  cacheSize: number;
}

/** Read by both processes: the API checks request schemas, the worker compiles them to check arguments. */
function toolSchemaLimits(env: Env): ToolSchemaLimits {
  return {
    maxBytes: positiveInt(env, 'TOOL_SCHEMA_MAX_BYTES', 32 * 1024),
    maxDepth: positiveInt(env, 'TOOL_SCHEMA_MAX_DEPTH', 32),
    cacheSize: positiveInt(env, 'TOOL_SCHEMA_CACHE_SIZE', 200),
  };
}

/** Bearer keys shorter than this are refused at start: they could be guessed. */
export const MIN_API_KEY_LENGTH = 24;
/** AGENTS_KEY_ID_SECRET is at least this long. */
export const MIN_KEY_ID_SECRET_LENGTH = 32;

/** What a request may ask of Heroku and of a tool (HEROKU_APPS, DYNO_SIZES, MAX_TOOL_CALLS); the catalogue enforces it. */
export interface ToolLimits {
  /** Apps `target_app_name` may name; empty means any. */
  herokuApps: string[];
  /** Dyno sizes a tool may use; empty means any. */
  dynoSizes: string[];
  /** The largest `max_calls`. */
  maxToolCalls: number;
  /** The largest `approval_timeout_seconds` (MAX_APPROVAL_TIMEOUT_SECONDS). */
  maxApprovalTimeoutSeconds: number;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME: traces are exported only when the endpoint is set. */
function tracingConfig(env: Env): TracingConfig | undefined {
  if (optional(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') === undefined) return undefined;
  return { endpoint: httpUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ''), serviceName: optional(env, 'OTEL_SERVICE_NAME') ?? 'durable-agents' };
}

export interface ApiConfig {
  port: number;
  /** Bearer keys the API accepts; the API refuses to start without one. */
  apiKeys: string[];
  /** AGENTS_ADMIN_KEYS: keys that also see and act on every run (they are valid keys too). */
  adminKeys: string[];
  /** AGENTS_KEY_ID_SECRET: the HMAC key that turns an API key into its id; the API refuses to start without it. */
  keyIdSecret?: string;
  /** KEY_MAX_CONCURRENT_RUNS and KEY_REQUESTS_PER_MINUTE. */
  quotas: { concurrentRuns: number; requestsPerMinute: number };
  toolLimits: ToolLimits;
  /** PAYLOAD_SWEEP_INTERVAL_SECONDS: how often the API drops payloads no retained run can reference. */
  payloadSweepIntervalSeconds: number;
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
  toolSchemas: ToolSchemaLimits;
  /** How many tool calls of one model reply a run runs at once (MAX_PARALLEL_TOOL_CALLS). */
  parallelToolCalls: number;
  /** METRICS_TOKEN: the bearer key GET /metrics wants; unset, /metrics is open. */
  metricsToken?: string;
  tracing?: TracingConfig;
  /** WEBHOOK_SECRET and WEBHOOK_ALLOW_HOSTS: a request may name a webhook only when the secret is set. */
  webhooks: WebhookSettings;
  /** WEBHOOK_MAX_ATTEMPTS: how often a run tries to deliver its webhook. */
  webhookMaxAttempts: number;
  /** KEY_DAILY_TOKEN_BUDGET: tokens a key's runs may use per UTC day; unset: no budget. */
  keyDailyTokenBudget?: number;
  /** USAGE_MAX_DAYS: the longest range GET /v1/agents/usage counts. */
  usageMaxDays: number;
}

export interface WebhookSettings {
  /** The signing key: the base64-decoded part of WEBHOOK_SECRET (`whsec_<base64>`); unset: no webhooks. */
  key?: Buffer;
  /** Hosts a webhook may name although they are not public addresses. */
  allowHosts: AllowEntry[];
}

/** WEBHOOK_SECRET (`whsec_<base64>`, as Standard Webhooks writes keys) and WEBHOOK_ALLOW_HOSTS. */
function webhookSettings(env: Env): WebhookSettings {
  const secret = optional(env, 'WEBHOOK_SECRET');
  const allowHosts = list(env, 'WEBHOOK_ALLOW_HOSTS').map((e) => parseAllowEntry(e, 'WEBHOOK_ALLOW_HOSTS'));
  if (secret === undefined) return { allowHosts };
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : undefined;
  const key = encoded !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
  if (!key || key.length < 24) throw new ConfigError('WEBHOOK_SECRET must be whsec_ followed by the base64 of a key of at least 24 bytes');
  return { key, allowHosts };
}

export function apiConfig(env: Env = process.env): ApiConfig {
  return {
    port: port(env, 'PORT', 3000),
    apiKeys: keyList(env, 'AGENTS_API_KEYS', MIN_API_KEY_LENGTH),
    adminKeys: keyList(env, 'AGENTS_ADMIN_KEYS', MIN_API_KEY_LENGTH),
    keyIdSecret: secret(env, 'AGENTS_KEY_ID_SECRET', MIN_KEY_ID_SECRET_LENGTH),
    quotas: {
      concurrentRuns: positiveInt(env, 'KEY_MAX_CONCURRENT_RUNS', 50),
      requestsPerMinute: positiveInt(env, 'KEY_REQUESTS_PER_MINUTE', 600),
    },
    toolLimits: {
      herokuApps: list(env, 'HEROKU_APPS'),
      dynoSizes: list(env, 'DYNO_SIZES'),
      maxToolCalls: positiveInt(env, 'MAX_TOOL_CALLS', 100),
      maxApprovalTimeoutSeconds: positiveInt(env, 'MAX_APPROVAL_TIMEOUT_SECONDS', 30 * 86_400),
    },
    payloadSweepIntervalSeconds: positiveInt(env, 'PAYLOAD_SWEEP_INTERVAL_SECONDS', 3600),
    maxModelCalls: positiveInt(env, 'MAX_MODEL_CALLS_PER_RUN', 25),
    allowedModels: list(env, 'ALLOWED_MODELS'),
    defaultModel: optional(env, 'INFERENCE_MODEL_ID'),
    maxBodyBytes: positiveInt(env, 'MAX_REQUEST_BYTES', 1024 * 1024),
    keepAliveMs: positiveInt(env, 'SSE_KEEPALIVE_MS', 15_000),
    mcpServersFile: optional(env, 'MCP_SERVERS'),
    mcpMaxTtlSeconds: positiveInt(env, 'MCP_MAX_TTL_SECONDS', 120),
    payloadStoreDir: payloadStoreDir(env),
    toolSchemas: toolSchemaLimits(env),
    parallelToolCalls: positiveInt(env, 'MAX_PARALLEL_TOOL_CALLS', 4),
    metricsToken: optional(env, 'METRICS_TOKEN'),
    tracing: tracingConfig(env),
    webhooks: webhookSettings(env),
    webhookMaxAttempts: positiveInt(env, 'WEBHOOK_MAX_ATTEMPTS', 10),
    keyDailyTokenBudget: optional(env, 'KEY_DAILY_TOKEN_BUDGET') === undefined ? undefined : positiveInt(env, 'KEY_DAILY_TOKEN_BUDGET', 1),
    usageMaxDays: positiveInt(env, 'USAGE_MAX_DAYS', 366),
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

/** Limits of html_to_markdown and pdf_to_markdown (runners/web-tool.ts). */
export interface WebToolLimits {
  /** WEB_MAX_HTML_BYTES, WEB_MAX_PDF_BYTES: the most a response may have, after decompression. */
  maxHtmlBytes: number;
  maxPdfBytes: number;
  /** WEB_MAX_HTML_DEPTH: how deeply a page's elements may nest. */
  maxHtmlDepth: number;
  /** WEB_MAX_PDF_PAGES: pages read of a PDF. */
  maxPdfPages: number;
}

/** The processes that convert documents to Markdown (runtimes/documents/converter.ts). */
export interface ConverterSettings {
  /** CONVERTER_PROCESSES: conversions at once. */
  processes: number;
  /** CONVERTER_MAX_MEMORY_MB: data memory of each converter process. */
  maxMemoryMb: number;
  /** The converter's whole environment: where to find prlimit and node's loader settings, nothing secret. */
  env: Record<string, string>;
}

/** The database tools' settings (runtimes/postgres/). */
export interface PostgresSettings {
  /** POSTGRES_ATTACHMENTS: the attachments the tools may use; undefined: any whose URL is a postgres:// URL. */
  attachments?: string[];
  /** `<ATTACHMENT>_URL` for `db_attachment` ATTACHMENT: the database tools get this look-up, not the environment. */
  databaseUrl(attachment: string): string | undefined;
  /** POSTGRES_POOL_SIZE: connections per attachment; more calls wait. */
  poolSize: number;
  /** POSTGRES_LOCK_TIMEOUT_MS: how long a statement may wait for a lock. */
  lockTimeoutMs: number;
}

const ATTACHMENT_NAME = /^[A-Z][A-Z0-9_]*$/;

function postgresSettings(env: Env): PostgresSettings {
  const attachments = optional(env, 'POSTGRES_ATTACHMENTS') === undefined ? undefined : list(env, 'POSTGRES_ATTACHMENTS');
  const bad = attachments?.find((name) => !ATTACHMENT_NAME.test(name));
  if (bad !== undefined) {
    throw new ConfigError(`POSTGRES_ATTACHMENTS entry '${bad}' is not an attachment name such as DATABASE (upper-case letters, digits and '_')`);
  }
  return {
    attachments,
    databaseUrl: (attachment) => optional(env, attachmentVariable(attachment)),
    poolSize: positiveInt(env, 'POSTGRES_POOL_SIZE', 5),
    lockTimeoutMs: positiveInt(env, 'POSTGRES_LOCK_TIMEOUT_MS', 5000),
  };
}

/** Only what a converter process needs of the worker's environment: it reads hostile documents, so no secrets. */
function converterEnv(env: Env): Record<string, string> {
  return Object.fromEntries(['PATH', 'TMPDIR', 'LANG', 'NODE_OPTIONS'].flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
}

export interface WorkerConfig {
  /** INFERENCE_URL (without `/v1`), INFERENCE_KEY (empty: none), and how long the start-up check waits for an answer. */
  inference: { url: string; key: string; checkTimeoutMs: number };
  /** Set when HEROKU_API_KEY is: then tools that name an app run in one-off dynos. */
  heroku?: { token: string; apiUrl: string };
  sandbox: SandboxConfig;
  /** FETCH_ALLOW_HOSTS, parsed. */
  fetchAllowHosts: AllowEntry[];
  web: WebToolLimits;
  converter: ConverterSettings;
  /** MCP_SERVERS: the MCP server registry file, if any. */
  mcpServersFile?: string;
  payloadStoreDir: string;
  postgres: PostgresSettings;
  toolSchemas: ToolSchemaLimits;
  /** Model calls this worker runs at once (MAX_CONCURRENT_MODEL_CALLS): they wait on the network. */
  modelCallSlots: number;
  /** Tool calls this worker runs at once (MAX_CONCURRENT_TOOL_CALLS): sandboxed ones take CPU. */
  toolCallSlots: number;
  /** Conversations of model calls kept in memory (CONVERSATION_CACHE_MB), so each call is given only new messages. */
  conversationCacheBytes: number;
  /** METRICS_PORT: where the worker serves GET /metrics; unset, it serves none. */
  metricsPort?: number;
  /** METRICS_TOKEN: the bearer key GET /metrics wants; unset, /metrics is open. */
  metricsToken?: string;
  tracing?: TracingConfig;
  webhooks: WebhookSettings;
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
    fetchAllowHosts: list(env, 'FETCH_ALLOW_HOSTS').map((e) => parseAllowEntry(e)),
    web: {
      maxHtmlBytes: positiveInt(env, 'WEB_MAX_HTML_BYTES', 5 * 1024 * 1024),
      maxPdfBytes: positiveInt(env, 'WEB_MAX_PDF_BYTES', 10 * 1024 * 1024),
      maxHtmlDepth: positiveInt(env, 'WEB_MAX_HTML_DEPTH', 512),
      maxPdfPages: positiveInt(env, 'WEB_MAX_PDF_PAGES', 500),
    },
    converter: {
      processes: positiveInt(env, 'CONVERTER_PROCESSES', 2),
      maxMemoryMb: positiveInt(env, 'CONVERTER_MAX_MEMORY_MB', 1024),
      env: converterEnv(env),
    },
    mcpServersFile: optional(env, 'MCP_SERVERS'),
    payloadStoreDir: payloadStoreDir(env),
    postgres: postgresSettings(env),
    toolSchemas: toolSchemaLimits(env),
    modelCallSlots: positiveInt(env, 'MAX_CONCURRENT_MODEL_CALLS', 200),
    toolCallSlots: positiveInt(env, 'MAX_CONCURRENT_TOOL_CALLS', 50),
    conversationCacheBytes: positiveInt(env, 'CONVERSATION_CACHE_MB', 64) * 2 ** 20,
    metricsPort: optional(env, 'METRICS_PORT') === undefined ? undefined : port(env, 'METRICS_PORT', 0),
    metricsToken: optional(env, 'METRICS_TOKEN'),
    tracing: tracingConfig(env),
    webhooks: webhookSettings(env),
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
