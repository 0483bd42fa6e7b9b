/**
 * Request validation for `type: "mcp"` tools (docs/api.md#a3-tool-objects):
 * find the tool in the servers' tool lists and build what the model sees from
 * the server's own tools/list. Nothing secret goes into the ResolvedTool (it
 * is workflow input). The servers are seen through McpServers, which the MCP
 * client (mcp/pool.ts) provides: the catalogue itself connects to nothing.
 */
import type { Tool as McpTool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { ToolObject } from '../contract/request-schema';
import type { ResolvedTool, SideEffectClass } from '../contract/run-contract';
import { TOOL_DEFAULTS } from '../contract/tool-defaults';
import type { JsonSchemas } from './json-schema';
import { ToolValidationError } from './tool-spec';

/** One configured MCP server as the catalogue sees it: its namespace, its last tool list, and why it is unavailable. */
export interface McpServerListing {
  readonly namespace: string;
  readonly tools: readonly McpTool[];
  readonly error: string | null;
}

/** The configured MCP servers. */
export interface McpServers {
  readonly servers: readonly McpServerListing[];
  server(namespace: string): McpServerListing | undefined;
  /** Lists the tools of servers not synced in the last few seconds again. */
  refresh(): Promise<void>;
}

export interface McpToolCatalog {
  pool: McpServers;
  /** MCP_MAX_TTL_SECONDS. */
  maxTtlSeconds: number;
}

const invalid = (message: string) => new ToolValidationError(message);

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

export async function resolveMcpTool(tool: ToolObject, at: string, catalog: McpToolCatalog, schemas: JsonSchemas): Promise<ResolvedTool> {
  const { pool, maxTtlSeconds } = catalog;
  if (pool.servers.length === 0) throw invalid(`${at}.name '${tool.name}': no MCP servers are configured on this server (MCP_SERVERS)`);
  // A tool added to a server since it was last listed is found after one refresh.
  let found = findTool(tool.name, at, pool);
  if (!found) {
    await pool.refresh();
    found = findTool(tool.name, at, pool);
  }
  if (!found) throw invalid(`${at}.name ${whyUnknown(tool.name, pool)}`);

  const runtime = tool.runtime_params;
  const ttl = runtime?.ttl_seconds ?? TOOL_DEFAULTS.ttl_seconds;
  if (ttl < 1 || ttl > maxTtlSeconds) {
    throw invalid(`${at}.runtime_params.ttl_seconds must be an integer between 1 and ${maxTtlSeconds} for mcp tools`);
  }
  // Heroku: "The other parameters aren't supported." target_app_name is ignored (clients send it on every tool);
  // tool_params would silently do nothing, so it is refused.
  if (Object.keys(runtime?.tool_params ?? {}).length > 0) {
    throw invalid(`${at}.runtime_params.tool_params is not supported for mcp tools`);
  }

  const name = `${found.server.namespace}/${found.tool.name}`;
  // `$schema` only names the draft; ajv (draft-07) would refuse newer ones it need not know about.
  const { $schema: _draft, ...parameters } = found.tool.inputSchema;
  const problem = schemas.problem(parameters);
  if (problem)
    throw invalid(`${at}.name '${tool.name}': the input schema MCP server '${found.server.namespace}' gives for '${found.tool.name}' ${problem}`);
  return {
    name,
    type: 'mcp',
    sideEffect: sideEffectOf(found.tool.annotations),
    function: { name, description: tool.description ?? found.tool.description ?? '', parameters },
    runtime: {
      dyno_size: runtime?.dyno_size ?? TOOL_DEFAULTS.dyno_size,
      ttl_seconds: ttl,
      max_calls: runtime?.max_calls ?? TOOL_DEFAULTS.max_calls,
      tool_params: {},
    },
  };
}

interface Found {
  server: McpServerListing;
  tool: McpTool;
}

/** The tool `name` names: `<namespace>/<tool>`, or a bare tool name that only one server has. */
function findTool(name: string, at: string, pool: McpServers): Found | undefined {
  const split = splitMcpName(name);
  if (split) {
    const server = pool.server(split.namespace);
    const tool = server?.tools.find((t) => t.name === split.tool);
    if (server && tool) return { server, tool };
  }
  const matches = pool.servers.flatMap((server) => server.tools.filter((t) => t.name === name).map((tool) => ({ server, tool })));
  if (matches.length > 1) {
    const candidates = matches.map((m) => `${m.server.namespace}/${m.tool.name}`).join(', ');
    throw invalid(`${at}.name '${name}' is ambiguous: it matches ${candidates}; use the namespaced name`);
  }
  return matches[0];
}

function whyUnknown(name: string, pool: McpServers): string {
  const unavailable = (s: McpServerListing) => (s.error ? ` (MCP server '${s.namespace}' is unavailable: ${s.error})` : '');
  const split = splitMcpName(name);
  const server = split && pool.server(split.namespace);
  if (split && !server) {
    return `'${name}': there is no MCP server with namespace '${split.namespace}'; configured: ${pool.servers.map((s) => s.namespace).join(', ')}`;
  }
  if (split && server) return `'${name}': MCP server '${server.namespace}' has no tool '${split.tool}'${unavailable(server)}`;
  return `'${name}' is not a tool of any configured MCP server (GET /v1/mcp/servers lists them)${pool.servers.map(unavailable).join('')}`;
}
