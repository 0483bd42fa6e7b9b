import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { ApiConfig, TemporalConfig } from '../common/config';
import { ConfigError } from '../common/errors';
import type { Log } from '../common/log';
import { dataConverter } from '../common/payload-store';
import { McpPool } from '../mcp/pool';
import { createApp } from './app';
import { OpenStreams } from './stream-run';
import { searchAttributesGate } from './search-attributes';

export interface ApiServer extends Server {
  /**
   * Stops taking connections, ends every open stream with a last `:keep-alive`
   * comment (clients resume elsewhere with Last-Event-ID), and resolves once
   * every connection is closed.
   */
  shutdown(): Promise<void>;
}

/** Starts the API; it connects to Temporal lazily, so it serves (and /healthz says 503) while Temporal is away. */
export async function startApi(temporal: TemporalConfig, config: ApiConfig, log: Log): Promise<ApiServer> {
  if (config.apiKeys.length === 0) throw new ConfigError('AGENTS_API_KEYS is empty: set at least one bearer key the API accepts');
  const connection = Connection.lazy(temporal.connectionOptions);
  const client = new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverter(config.payloadStoreDir) });
  const mcp = McpPool.fromFile(config.mcpServersFile, log);
  await mcp.syncAll(); // requests are validated against the tool lists
  const searchAttributes = searchAttributesGate(client, temporal.namespace, (msg) => log.warn(msg));
  const streams = new OpenStreams();
  const app = createApp({ client, namespace: temporal.namespace, config, mcp, log, searchAttributes, streams });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, () => resolve(s));
    s.once('error', reject);
    s.once('close', () => void mcp.close());
  });
  const shutdown = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Ended streams leave idle keep-alive connections behind: close them too.
      void streams.endAll().then(() => server.closeIdleConnections());
    });
  return Object.assign(server, { shutdown });
}
