/**
 * Request validation for `type: "mcp"` tools (spec A3): find the tool in the
 * API's catalog and build what the model sees from the server's own
 * tools/list. Nothing secret goes into the ResolvedTool (it is workflow input).
 */
import type { Tool as McpTool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { invalidRequest } from '../../common/errors';
import type { ToolObject } from '../../common/request-schema';
import type { ResolvedTool, SideEffectClass } from '../../common/run-contract';
import { schemaProblem } from '../tools/json-schema';
import type { McpPool, McpServerConnection } from './pool';

export interface McpToolCatalog {
  pool: McpPool;
  /** MCP_MAX_TTL_SECONDS. */
  maxTtlSeconds: number;
}

const DEFAULT_TTL_SECONDS = 120;

/** `files/read` → namespace `files`, tool `read` (namespaces cannot contain '/', tool names may). */
export function splitMcpName(name: string): { namespace: string; tool: string } | undefined {
  const slash = name.indexOf('/');
  return slash < 0 ? undefined : { namespace: name.slice(0, slash), tool: name.slice(slash + 1) };
}

/** MCP's hints decide the retry policy: only read-only and idempotent tools are retried. */
export function sideEffectOf(annotations: ToolAnnotations | undefined): SideEffectClass {
  if (annotations?.readOnlyHint === true) return 'read-only';
  if (annotations?.idempotentHint === true) return 'idempotent';
  return 'side-effecting';
}

export async function resolveMcpTool(tool: ToolObject, at: string, catalog: McpToolCatalog): Promise<ResolvedTool> {
  const { pool, maxTtlSeconds } = catalog;
  if (pool.servers.length === 0) throw invalidRequest(`${at}.name '${tool.name}': no MCP servers are configured on this server (MCP_SERVERS)`);
  // A tool added to a server since it was last listed is found after one refresh.
  let found = findTool(tool.name, at, pool);
  if (!found) {
    await pool.refresh();
    found = findTool(tool.name, at, pool);
  }
  if (!found) throw invalidRequest(`${at}.name ${whyUnknown(tool.name, pool)}`);

  const runtime = tool.runtime_params;
  const ttl = runtime?.ttl_seconds ?? DEFAULT_TTL_SECONDS;
  if (ttl < 1 || ttl > maxTtlSeconds) {
    throw invalidRequest(`${at}.runtime_params.ttl_seconds must be an integer between 1 and ${maxTtlSeconds} for mcp tools`);
  }
  // Heroku: "The other parameters aren't supported." target_app_name is ignored (clients send it on every tool);
  // tool_params would silently do nothing, so it is refused.
  if (Object.keys(runtime?.tool_params ?? {}).length > 0) {
    throw invalidRequest(`${at}.runtime_params.tool_params is not supported for mcp tools`);
  }

  const name = `${found.server.namespace}/${found.tool.name}`;
  // `$schema` only names the draft; ajv (draft-07) would refuse newer ones it need not know about.
  const { $schema: _draft, ...parameters } = found.tool.inputSchema;
  const problem = schemaProblem(parameters);
  if (problem) throw invalidRequest(`${at}.name '${tool.name}': the input schema MCP server '${found.server.namespace}' gives for '${found.tool.name}' is not usable: ${problem}`);
  return {
    name,
    type: 'mcp',
    sideEffect: sideEffectOf(found.tool.annotations),
    function: { name, description: tool.description ?? found.tool.description ?? '', parameters },
    runtime: {
      dyno_size: runtime?.dyno_size ?? 'standard-1x',
      ttl_seconds: ttl,
      max_calls: runtime?.max_calls ?? 3,
      tool_params: {},
    },
  };
}

interface Found {
  server: McpServerConnection;
  tool: McpTool;
}

/** The tool `name` names: `<namespace>/<tool>`, or a bare tool name that only one server has. */
function findTool(name: string, at: string, pool: McpPool): Found | undefined {
  const split = splitMcpName(name);
  if (split) {
    const server = pool.server(split.namespace);
    const tool = server?.tools.find((t) => t.name === split.tool);
    if (server && tool) return { server, tool };
  }
  const matches = pool.servers.flatMap((server) => server.tools.filter((t) => t.name === name).map((tool) => ({ server, tool })));
  if (matches.length > 1) {
    const candidates = matches.map((m) => `${m.server.namespace}/${m.tool.name}`).join(', ');
    throw invalidRequest(`${at}.name '${name}' is ambiguous: it matches ${candidates}; use the namespaced name`);
  }
  return matches[0];
}

function whyUnknown(name: string, pool: McpPool): string {
  const unavailable = (s: McpServerConnection) => (s.error ? ` (MCP server '${s.namespace}' is unavailable: ${s.error})` : '');
  const split = splitMcpName(name);
  const server = split && pool.server(split.namespace);
  if (split && !server) {
    return `'${name}': there is no MCP server with namespace '${split.namespace}'; configured: ${pool.servers.map((s) => s.namespace).join(', ')}`;
  }
  if (split && server) return `'${name}': MCP server '${server.namespace}' has no tool '${split.tool}'${unavailable(server)}`;
  return `'${name}' is not a tool of any configured MCP server (GET /v1/mcp/servers lists them)${pool.servers.map(unavailable).join('')}`;
}
