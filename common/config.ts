/**
 * Environment variables (spec Part C), read in one place. Secrets stay in the
 * process that reads them: none of these values may be passed to a workflow.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { parseAllowEntry, type AllowEntry } from '../activities/web/address-policy';

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function positiveInt(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return n;
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  /** Options for Connection.connect / NativeConnection.connect (TLS, API key, ...). */
  connectionOptions: ReturnType<typeof loadClientConnectConfig>['connectionOptions'];
}

/** TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*: Temporal's own loader. */
export function temporalConfig(env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  const { connectionOptions, namespace } = loadClientConnectConfig({
    overrideEnvVars: env as Record<string, string>,
    disableFile: !env.TEMPORAL_CONFIG_FILE,
  });
  const address = connectionOptions.address ?? 'localhost:7233';
  return { address, namespace: namespace ?? 'default', connectionOptions: { ...connectionOptions, address } };
}

export interface ApiConfig {
  port: number;
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
}

export function apiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  return {
    port: positiveInt('PORT', 3000, env),
    apiKeys: list(env.AGENTS_API_KEYS),
    maxModelCalls: positiveInt('MAX_MODEL_CALLS_PER_RUN', 25, env),
    allowedModels: list(env.ALLOWED_MODELS),
    defaultModel: env.INFERENCE_MODEL_ID || undefined,
    maxBodyBytes: positiveInt('MAX_REQUEST_BYTES', 1024 * 1024, env),
    keepAliveMs: positiveInt('SSE_KEEPALIVE_MS', 15_000, env),
    mcpServersFile: env.MCP_SERVERS || undefined,
    mcpMaxTtlSeconds: positiveInt('MCP_MAX_TTL_SECONDS', 120, env),
  };
}

export interface WorkerConfig {
  inferenceUrl: string;
  inferenceKey: string;
  herokuApiKey?: string;
  herokuApiUrl: string;
  toolSandbox: 'bubblewrap' | 'none';
  /** FETCH_ALLOW_HOSTS, parsed: a bad entry stops the worker at start, not each fetch. */
  fetchAllowHosts: AllowEntry[];
  /** MCP_SERVERS: the MCP server registry file, if any. */
  mcpServersFile?: string;
  /** The worker's environment, for `<ATTACHMENT>_URL` look-ups. */
  env: NodeJS.ProcessEnv;
}

export function workerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const sandbox = env.TOOL_SANDBOX || 'bubblewrap';
  if (sandbox !== 'bubblewrap' && sandbox !== 'none') {
    throw new Error(`TOOL_SANDBOX must be 'bubblewrap' or 'none', got '${sandbox}'`);
  }
  return {
    inferenceUrl: (env.INFERENCE_URL || 'http://127.0.0.1:11434').replace(/\/+$/, ''),
    inferenceKey: env.INFERENCE_KEY || '',
    herokuApiKey: env.HEROKU_API_KEY || undefined,
    herokuApiUrl: env.HEROKU_API_URL || 'https://api.heroku.com',
    toolSandbox: sandbox,
    fetchAllowHosts: list(env.FETCH_ALLOW_HOSTS).map(parseAllowEntry),
    mcpServersFile: env.MCP_SERVERS || undefined,
    env,
  };
}
