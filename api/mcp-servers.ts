/**
 * GET /v1/mcp/servers in Heroku's shape (Dev Center, "Managed Inference and
 * Agents API /v1/mcp/servers"): the MCP Server Object and its Tool Objects.
 * Additions: `url` for streamable HTTP servers and `error` (why a server is
 * disconnected). `args`, `env` and `headers` are never shown (arguments
 * often carry connection strings or tokens); a URL loses its credentials and
 * query string, which may carry secrets.
 */
import { createHash } from 'node:crypto';
import type { McpPool, McpServerConnection, PrimitivesStatus, ServerStatus } from '../mcp/pool';

export interface McpServerObject {
  id: string;
  app_id: null;
  process_type: string | null;
  process_command: string | null;
  url: string | null;
  created_at: string;
  updated_at: string;
  namespace: string;
  server_status: ServerStatus;
  primitives_status: PrimitivesStatus;
  error: string | null;
  tools: Array<{
    name: string;
    namespaced_name: string;
    description: string;
    input_schema: Record<string, unknown>;
    annotations: Record<string, unknown>;
  }>;
}

export function listMcpServers(pool: McpPool): McpServerObject[] {
  return pool.servers.map(describe);
}

function describe(server: McpServerConnection): McpServerObject {
  const c = server.config;
  return {
    id: stableUuid(server.namespace),
    app_id: null,
    // Heroku's stdio servers are Procfile processes; ours are the registry's command.
    process_type: c.transport === 'stdio' ? c.command : null,
    process_command: c.transport === 'stdio' ? c.command : null,
    url: c.transport === 'streamable_http' ? publicUrl(c.url) : null,
    created_at: server.createdAt.toISOString(),
    updated_at: server.updatedAt.toISOString(),
    namespace: server.namespace,
    server_status: server.serverStatus,
    primitives_status: server.primitivesStatus,
    error: server.error,
    tools: server.tools.map((t) => ({
      name: t.name,
      namespaced_name: `${server.namespace}/${t.name}`,
      description: t.description ?? '',
      input_schema: t.inputSchema,
      annotations: t.annotations ?? {},
    })),
  };
}

/** The same id from every API process and across restarts: a name-based (v5-style) UUID of the namespace. */
function stableUuid(namespace: string): string {
  const b = createHash('sha1').update(`durable-agents/mcp/${namespace}`).digest().subarray(0, 16);
  b.writeUInt8((b.readUInt8(6) & 0x0f) | 0x50, 6); // version 5
  b.writeUInt8((b.readUInt8(8) & 0x3f) | 0x80, 8); // RFC 4122 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function publicUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
