import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { ApiConfig, TemporalConfig } from '../common/config';
import { McpPool } from '../activities/mcp/pool';
import { dataConverter } from '../common/payload-store';
import { createApp } from './app';
import { searchAttributesGate } from './search-attributes';

const log = {
  info: (msg: string, meta?: Record<string, unknown>) => console.log(JSON.stringify({ level: 'info', msg, ...meta })),
  warn: (msg: string, meta?: Record<string, unknown>) => console.warn(JSON.stringify({ level: 'warn', msg, ...meta })),
};

/** Starts the API; it connects to Temporal lazily, so it serves (and /healthz says 503) while Temporal is away. */
export async function startApi(temporal: TemporalConfig, config: ApiConfig): Promise<Server> {
  if (config.apiKeys.length === 0) throw new Error('AGENTS_API_KEYS is empty: set at least one bearer key the API accepts');
  const connection = Connection.lazy(temporal.connectionOptions as Parameters<typeof Connection.lazy>[0]);
  const client = new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverter() });
  const mcp = McpPool.fromFile(config.mcpServersFile, log);
  await mcp.syncAll(); // requests are validated against the tool lists
  const searchAttributes = searchAttributesGate(client, temporal.namespace, (msg) => log.warn(msg));
  const app = createApp({ client, namespace: temporal.namespace, config, mcp, log, searchAttributes });
  return new Promise((resolve, reject) => {
    const server = app.listen(config.port, () => resolve(server));
    server.once('error', reject);
    server.once('close', () => void mcp.close());
  });
}
