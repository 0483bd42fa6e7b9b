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
import { Runtime } from '@temporalio/worker';
import { startApi } from '../api/server';
import { apiConfig, serviceConfig, temporalConfig, workerConfig, type ServiceConfig } from '../common/config';
import { SEARCH_ATTRIBUTE_KEYS } from '../contract/search-attributes';
import { startDevServer, type DevServer } from '../dev/dev-server';
import { locateTemporalCli } from '../dev/temporal-cli';
import { createAgentWorker } from '../worker/worker';

const say = (msg: string) => console.log(`durable-agents: ${msg}`);

/** A key generated once and kept in the data folder, for when AGENTS_API_KEYS is unset. */
function storedApiKey(dataDir: string): string {
  const file = path.join(dataDir, 'api-key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, `da_${crypto.randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  return fs.readFileSync(file, 'utf8').trim();
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
  say(`embedded Temporal dev server at ${devServer.address}; Web UI at ${devServer.uiUrl}`);
  return devServer;
}

async function main() {
  const service = serviceConfig();
  const api = apiConfig();
  const worker = workerConfig();
  // We stop the worker ourselves, after the API, so in-flight streams end cleanly.
  Runtime.install({ shutdownSignals: [] });
  const devServer = service.embeddedTemporal && (await embeddedTemporal(service, service.embeddedTemporal));
  const temporal = temporalConfig(devServer ? { ...process.env, TEMPORAL_ADDRESS: devServer.address } : process.env);
  // Only a key we generated is printed: an operator's own keys never reach the logs.
  const generatedKey = api.apiKeys.length === 0 ? storedApiKey(service.dataDir) : undefined;

  const agent = await createAgentWorker(temporal, worker);
  const workerDone = agent.run();
  const server = await startApi(temporal, generatedKey ? { ...api, apiKeys: [generatedKey] } : api);
  say(`API listening on http://localhost:${api.port}`);
  if (generatedKey) {
    say(
      `try it:\n  curl -N http://localhost:${api.port}/v1/agents/heroku \\\n    -H 'Authorization: Bearer ${generatedKey}' -H 'Content-Type: application/json' \\\n` +
        `    -d '{"model":"${api.defaultModel ?? 'claude-4-sonnet'}","messages":[{"role":"user","content":"Hello!"}]}'`,
    );
  }

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
  await workerDone;
}

main().catch((err) => {
  console.error(`durable-agents: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
