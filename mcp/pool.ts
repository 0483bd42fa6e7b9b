/**
 * The MCP client: connections to the servers of the registry file, one per
 * server, held by each process that uses them: the API (for the tool catalogue
 * and request validation, through catalog/mcp-tools.ts's McpServers) and the
 * worker (to call tools). Secrets in a server's `env` and
 * `headers` go to that server only; nothing here puts them anywhere else.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AppError } from '../common/errors';
import { loadMcpRegistry, type McpServerConfig } from './registry-file';

export interface McpLog {
  info(msg: string, meta?: Record<string, unknown>): void;
  warn(msg: string, meta?: Record<string, unknown>): void;
}

/** Heroku's status values (GET /v1/mcp/servers). */
export type ServerStatus = 'registered' | 'disconnected';
export type PrimitivesStatus = 'syncing' | 'synced' | 'error';

const CLIENT_INFO = { name: 'durable-agents', version: '0.1.0' };
/** Bounds connecting and listing tools, so one unreachable server cannot hold up start-up. */
const SYNC_TIMEOUT_MS = 10_000;
/** A request naming an unknown tool re-lists a server at most this often. */
const MIN_RESYNC_MS = 5_000;

/** Connecting failed, or the connection broke during a call: the next use of the server connects again. */
export class McpConnectionError extends AppError {
  constructor(
    message: string,
    /** Whether the request had been sent: then the tool may have run. */
    readonly duringCall: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One configured server: its connection, made on demand, and what it last told us. */
export class McpServerConnection {
  readonly createdAt = new Date();
  updatedAt = this.createdAt;
  serverStatus: ServerStatus = 'disconnected';
  primitivesStatus: PrimitivesStatus = 'syncing';
  /** Why the server is disconnected or its tools could not be listed. */
  error: string | null = null;
  /** The tools of the last successful tools/list. */
  tools: Tool[] = [];
  private client: Promise<Client> | undefined;
  private syncing: Promise<void> | undefined;
  private lastSyncStart = 0;

  constructor(
    readonly config: McpServerConfig,
    private readonly log: McpLog,
  ) {}

  get namespace(): string {
    return this.config.namespace;
  }

  /** tools/list, every page; the outcome goes into the status fields. Concurrent calls share one sync. */
  sync(): Promise<void> {
    this.syncing ??= this.listTools().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  /** Syncs unless that was tried less than MIN_RESYNC_MS ago. */
  syncIfStale(): Promise<void> {
    return Date.now() - this.lastSyncStart < MIN_RESYNC_MS ? (this.syncing ?? Promise.resolve()) : this.sync();
  }

  /**
   * tools/call. Server answers, including `isError` results, are returned;
   * a time-out (`timeoutMs`, covering connecting too) or an abort throws the
   * SDK's error; a broken connection throws McpConnectionError and is dropped,
   * so the next call starts a stdio server again or reconnects over HTTP.
   */
  async callTool(name: string, args: Record<string, unknown>, opts: { timeoutMs: number; signal: AbortSignal }): Promise<CallToolResult> {
    const deadline = Date.now() + opts.timeoutMs;
    const client = await this.connect({ timeout: opts.timeoutMs, signal: opts.signal });
    try {
      const options = { timeout: Math.max(1, deadline - Date.now()), signal: opts.signal };
      return (await client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
    } catch (err) {
      if (opts.signal.aborted || !brokenConnection(err)) throw err;
      await this.drop(client, err);
      throw new McpConnectionError(message(err), true, { cause: err });
    }
  }

  async close(): Promise<void> {
    const client = await this.client?.catch(() => undefined);
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  private async listTools(): Promise<void> {
    this.lastSyncStart = Date.now();
    this.setStatus({ primitivesStatus: 'syncing' });
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    try {
      const client = await this.connect({ timeout: SYNC_TIMEOUT_MS });
      const tools: Tool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, { timeout: Math.max(1, deadline - Date.now()) });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
      this.tools = tools;
      this.setStatus({ primitivesStatus: 'synced', error: null });
      this.log.info('mcp server synced', { namespace: this.namespace, tools: tools.length });
    } catch (err) {
      const client = await this.client?.catch(() => undefined);
      if (client && brokenConnection(err)) await this.drop(client, err);
      this.setStatus({ primitivesStatus: 'error', error: message(err) });
      this.log.warn('mcp server sync failed', { namespace: this.namespace, error: message(err) });
    }
  }

  private connect(options: RequestOptions): Promise<Client> {
    if (!this.client) {
      const connecting = this.open(options);
      this.client = connecting;
      connecting.catch((err) => {
        if (this.client === connecting) this.client = undefined;
        this.setStatus({ serverStatus: 'disconnected', error: message(err) });
      });
    }
    return this.client;
  }

  private async open(options: RequestOptions): Promise<Client> {
    const client = new Client(CLIENT_INFO, {
      // A server that announces a changed tool list is listed again.
      listChanged: { tools: { autoRefresh: false, onChanged: () => void this.sync() } },
    });
    client.onclose = () => {
      void this.drop(client, new Error('the connection closed'));
    };
    try {
      await client.connect(this.transport(), options);
    } catch (err) {
      await client.close().catch(() => undefined);
      throw new McpConnectionError(message(err), false, { cause: err });
    }
    this.setStatus({ serverStatus: 'registered', error: null });
    return client;
  }

  private transport() {
    const c = this.config;
    if (c.transport === 'stdio') return new StdioClientTransport({ command: c.command, args: c.args, env: c.env, stderr: 'inherit' });
    return new StreamableHTTPClientTransport(new URL(c.url), { requestInit: { headers: c.headers } });
  }

  /** Forgets `client` if it is still the current connection. */
  private async drop(client: Client, why: unknown): Promise<void> {
    const current = await this.client?.catch(() => undefined);
    if (current !== client) return;
    this.client = undefined;
    this.setStatus({ serverStatus: 'disconnected', error: message(why) });
    this.log.warn('mcp server disconnected', { namespace: this.namespace, error: message(why) });
    await client.close().catch(() => undefined);
  }

  private setStatus(change: Partial<Pick<McpServerConnection, 'serverStatus' | 'primitivesStatus' | 'error'>>): void {
    Object.assign(this, change);
    this.updatedAt = new Date();
  }
}

/** Every server of the registry file (none when MCP_SERVERS is unset). */
export class McpPool {
  private constructor(readonly servers: McpServerConnection[]) {}

  /** Reads the registry file (a bad file throws); connects to nothing yet. */
  static fromFile(registryFile: string | undefined, log: McpLog): McpPool {
    const configs = registryFile ? loadMcpRegistry(registryFile) : [];
    return new McpPool(configs.map((c) => new McpServerConnection(c, log)));
  }

  server(namespace: string): McpServerConnection | undefined {
    return this.servers.find((s) => s.namespace === namespace);
  }

  /** Connects to every server and lists its tools; a failing server is recorded, not thrown. */
  syncAll(): Promise<void> {
    return Promise.all(this.servers.map((s) => s.sync())).then(() => undefined);
  }

  /** Re-lists servers not synced in the last few seconds: a request may name a tool added since. */
  refresh(): Promise<void> {
    return Promise.all(this.servers.map((s) => s.syncIfStale())).then(() => undefined);
  }

  close(): Promise<void> {
    return Promise.all(this.servers.map((s) => s.close())).then(() => undefined);
  }
}

/** Errors of the transport, as opposed to answers from the server (an MCP error, a time-out). */
function brokenConnection(err: unknown): boolean {
  return !(err instanceof McpError) || err.code === (ErrorCode.ConnectionClosed as number);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
