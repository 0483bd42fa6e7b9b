import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import type { ApiConfig, TemporalConfig } from '../common/config';
import { ConfigError } from '../common/errors';
import type { Log } from '../common/log';
import { dataConverter } from '../common/payload-store';
import { processTracing } from '../common/tracing';
import { McpPool } from '../mcp/pool';
import { createApp } from './app';
import { OpenStreams } from './stream-run';
import { searchAttributesGate } from './search-attributes';
import { ApiPresence } from './api-presence';
import { startPayloadSweeper } from './payload-sweeper';
import { ApiError } from './api-error';
import { metricsClientInterceptor } from './metrics';

/** Parser errors that have a more telling status than 400. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

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
  const keyIdSecret = config.keyIdSecret;
  if (!keyIdSecret) {
    throw new ConfigError(
      'AGENTS_KEY_ID_SECRET is not set: set the same secret of at least 32 characters on every API process (e.g. openssl rand -base64 32); runs are tied to their key through it',
    );
  }
  const connection = Connection.lazy(temporal.connectionOptions);
  const tracing = await processTracing(config.tracing);
  const client = new Client({
    connection,
    namespace: temporal.namespace,
    dataConverter: dataConverter(config.payloadStoreDir),
    interceptors: { workflow: [metricsClientInterceptor] },
    plugins: tracing ? [tracing.plugin] : [],
  });
  const mcp = McpPool.fromFile(config.mcpServersFile, log);
  await mcp.syncAll(); // requests are validated against the tool lists
  const searchAttributes = searchAttributesGate(client, temporal.namespace, (msg) => log.warn(msg));
  const streams = new OpenStreams();
  const presence = new ApiPresence(client, temporal.namespace);
  const app = createApp({ client, namespace: temporal.namespace, config, mcp, log, searchAttributes, streams, presence, keyIdSecret });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, () => resolve(s));
    s.once('error', reject);
    s.once('close', () => void mcp.close());
  });
  // Requests the HTTP parser refuses (a bad request line, header or encoding) get Heroku's JSON error too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, reason] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request'];
    const body = JSON.stringify(new ApiError(status, 'invalid_request_error', `malformed HTTP request (${err.code ?? 'parse error'})`).body());
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  // An Expect header other than 100-continue: Node would answer a bare 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = new ApiError(417, 'invalid_request_error', `Expect: ${req.headers.expect ?? ''} is not supported`);
    res.writeHead(417, { 'Content-Type': 'application/json', Connection: 'close' }).end(JSON.stringify(error.body()));
  });
  presence.start();
  const stopSweeper = startPayloadSweeper(client, temporal.namespace, config.payloadStoreDir, config.payloadSweepIntervalSeconds * 1000, log);
  server.once('close', () => {
    presence.stop();
    stopSweeper();
  });
  const shutdown = () =>
    new Promise<void>((resolve) => {
      // The last spans go out before the process exits; a collector that is away must not hold the exit.
      server.close(() => void Promise.resolve(tracing?.flush()).then(resolve, resolve));
      // Ended streams leave idle keep-alive connections behind: close them too.
      void streams.endAll().then(() => server.closeIdleConnections());
    });
  return Object.assign(server, { shutdown });
}
