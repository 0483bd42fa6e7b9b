/**
 * `npm start`: the whole service in one command. Unless TEMPORAL_ADDRESS names
 * a Temporal service, it runs an embedded Temporal dev server (SQLite under
 * .data/, Web UI on :8233; dev/ has the launcher); then a worker and the API
 * in this process. Every setting is read once, up front; values are passed
 * on, never written back to the environment.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startApi } from '../api/server';
import { apiConfig, serviceConfig, temporalConfig, workerConfig, type ServiceConfig } from '../common/config';
import { createLog, logLevel } from '../common/log';
import { SEARCH_ATTRIBUTE_KEYS } from '../contract/search-attributes';
import { startDevServer, type DevServer } from '../dev/dev-server';
import { locateTemporalCli } from '../dev/temporal-cli';
import { installRuntime } from '../worker/runtime';
import { sdkMetricsTelemetry } from '../worker/metrics';
import { createAgentWorker } from '../worker/worker';

const log = createLog('durable-agents');
const say = (msg: string) => log.info(msg);

/** A secret generated once and kept in the data folder: the API key when AGENTS_API_KEYS is unset, the key-id secret when AGENTS_KEY_ID_SECRET is. */
function storedSecret(dataDir: string, name: string, prefix = ''): string {
  const file = path.join(dataDir, name);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, `${prefix}${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  }
  return fs.readFileSync(file, 'utf8').trim();
}

/** `file` relative to the working directory when it lies below it (`.data/api-key`), else absolute. */
function shortPath(file: string): string {
  const relative = path.relative('.', file);
  return relative.startsWith('..') ? file : relative;
}

async function embeddedTemporal(service: ServiceConfig, embedded: NonNullable<ServiceConfig['embeddedTemporal']>): Promise<DevServer> {
  const devServer = await startDevServer({
    cliPath: await locateTemporalCli(say, embedded.cliPath),
    port: embedded.port,
    uiPort: embedded.uiPort,
    dbFile: path.join(service.dataDir, 'temporal.db'),
    logFile: path.join(service.dataDir, 'temporal.log'),
    searchAttributes: SEARCH_ATTRIBUTE_KEYS,
  });
  log.info(`embedded Temporal dev server at ${devServer.address}; Web UI at ${devServer.uiUrl}`, {
    temporalAddress: devServer.address,
    webUi: devServer.uiUrl,
  });
  return devServer;
}

async function main() {
  const level = logLevel();
  log.setLevel(level);
  const service = serviceConfig();
  const api = apiConfig();
  const worker = workerConfig();
  // We stop the worker ourselves, after the API, so in-flight streams end cleanly.
  // The SDK's metrics join the API's /metrics: one process, one /metrics.
  installRuntime(log, level, { shutdownSignals: [], metrics: await sdkMetricsTelemetry() });
  const devServer = service.embeddedTemporal && (await embeddedTemporal(service, service.embeddedTemporal));
  const temporal = temporalConfig(devServer ? { ...process.env, TEMPORAL_ADDRESS: devServer.address } : process.env);
  // Only a key we generated is announced (by its file, never in the log); an operator's own keys never reach the logs.
  const apiKeyFile = api.apiKeys.length === 0 ? path.join(service.dataDir, 'api-key') : undefined;
  const generatedKey = apiKeyFile && storedSecret(service.dataDir, 'api-key', 'da_');
  const keyIdSecret = api.keyIdSecret ?? storedSecret(service.dataDir, 'key-id-secret');

  const agent = await createAgentWorker(temporal, worker, log);
  const workerDone = agent.run();
  const server = await startApi(temporal, { ...api, keyIdSecret, ...(generatedKey ? { apiKeys: [generatedKey] } : {}) }, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: shutting down`);
    void server.shutdown(); // open streams end cleanly; their clients resume after the restart
    agent.shutdown();
    await workerDone.catch(() => undefined);
    await devServer?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Ready, and said so only once a signal is handled.
  const url = `http://localhost:${api.port}`;
  // The key itself is never logged: it is in the file (the README's example reads it from there).
  log.info(`API listening on ${url}${apiKeyFile ? `; its key is in ${shortPath(apiKeyFile)}: try the example of README.md` : ''}`, {
    url,
    ...(apiKeyFile ? { apiKeyFile } : {}),
  });

  await workerDone;
}

main().catch((err: unknown) => {
  log.error(`cannot run: ${err instanceof Error ? err.message : String(err)}`, { err });
  process.exit(1);
});
