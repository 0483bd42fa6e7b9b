/**
 * `npm start`: the whole service in one command. Unless TEMPORAL_ADDRESS names
 * a Temporal service, it runs an embedded Temporal dev server (SQLite under
 * .data/, Web UI on :8233); then a worker and the API in this process.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Runtime } from '@temporalio/worker';
import { startApi } from '../api/server';
import { apiConfig, temporalConfig, workerConfig } from '../common/config';
import { SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { createAgentWorker } from '../worker/worker';
import { startDevServer, type DevServer } from './dev-server';
import { locateTemporalCli } from './temporal-cli';

const DATA_DIR = path.resolve(process.env.DATA_DIR || '.data');
const say = (msg: string) => console.log(`durable-agents: ${msg}`);

/** AGENTS_API_KEYS, or a key generated once and kept in the data folder. */
function apiKeys(): string {
  if (process.env.AGENTS_API_KEYS) return process.env.AGENTS_API_KEYS;
  const file = path.join(DATA_DIR, 'api-key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(DATA_DIR, { recursive: true });
    fs.writeFileSync(file, `da_${crypto.randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  return fs.readFileSync(file, 'utf8').trim();
}

async function main() {
  // We stop the worker ourselves, after the API, so in-flight streams end cleanly.
  Runtime.install({ shutdownSignals: [] });
  let devServer: DevServer | undefined;
  if (!process.env.TEMPORAL_ADDRESS) {
    const port = Number(process.env.TEMPORAL_DEV_PORT || 7233);
    devServer = await startDevServer({
      cliPath: await locateTemporalCli(say),
      port,
      uiPort: Number(process.env.TEMPORAL_UI_PORT || port + 1000),
      dbFile: path.join(DATA_DIR, 'temporal.db'),
      logFile: path.join(DATA_DIR, 'temporal.log'),
      searchAttributes: SEARCH_ATTRIBUTES,
    });
    process.env.TEMPORAL_ADDRESS = devServer.address;
    say(`embedded Temporal dev server at ${devServer.address}; Web UI at ${devServer.uiUrl}`);
  }
  // Only a key we generated is printed: an operator's own keys never reach the logs.
  const generatedKey = !process.env.AGENTS_API_KEYS;
  process.env.AGENTS_API_KEYS = apiKeys();

  const temporal = temporalConfig();
  const agent = await createAgentWorker(temporal, workerConfig());
  const workerDone = agent.run();
  const config = apiConfig();
  const server = await startApi(temporal, config);
  const key = config.apiKeys[0]!;
  say(`API listening on http://localhost:${config.port}`);
  if (generatedKey) {
    say(`try it:\n  curl -N http://localhost:${config.port}/v1/agents/heroku \\\n    -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' \\\n    -d '{"model":"${process.env.INFERENCE_MODEL_ID || 'claude-4-sonnet'}","messages":[{"role":"user","content":"Hello!"}]}'`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: shutting down`);
    void server.shutdown(); // open streams end cleanly; their clients resume after the restart
    agent.worker.shutdown();
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
