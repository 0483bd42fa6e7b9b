/**
 * The worker's side of an MCP tool call: tools/call on the server's
 * connection, bounded by ttl_seconds. The payload is the server's
 * CallToolResult as JSON (docs/api.md#a5-the-event-stream); a failure to get
 * one is a ToolError, which the model reads as an `isError` result.
 */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { splitMcpName } from '../catalog/mcp-tools';
import type { ResolvedTool } from '../contract/run-contract';
import { McpConnectionError, type McpPool } from '../mcp/pool';
import type { ToolRunContext } from '../tool-call/context';
import { ToolError } from '../tool-call/tool-error';

export async function callMcpTool(pool: McpPool, tool: ResolvedTool, args: Record<string, unknown>, ctx: ToolRunContext): Promise<string> {
  const split = splitMcpName(tool.name);
  const server = split && pool.server(split.namespace);
  if (!split || !server) throw new ToolError(`this worker has no MCP server for '${tool.name}' (MCP_SERVERS).`);

  const ttl = ctx.runtime.ttl_seconds;
  try {
    const result = await server.callTool(split.tool, args, { timeoutMs: ttl * 1000, signal: ctx.signal });
    // Verbatim, with `isError` always present as in Heroku's payloads.
    return JSON.stringify({ ...result, isError: result.isError === true });
  } catch (err) {
    if (ctx.signal.aborted) throw err; // the run was cancelled or the activity timed out
    throw new ToolError(describeFailure(err, tool.name, server.namespace, ttl), { cause: err });
  }
}

function describeFailure(err: unknown, name: string, namespace: string, ttl: number): string {
  if (err instanceof McpError && err.code === (ErrorCode.RequestTimeout as number)) {
    return `'${name}' did not answer within ttl_seconds (${ttl}s); the call was cancelled.`;
  }
  if (err instanceof McpConnectionError && !err.duringCall) {
    return `cannot connect to MCP server '${namespace}' (${err.message}); the tool was not run.`;
  }
  if (err instanceof McpConnectionError) {
    return `the connection to MCP server '${namespace}' broke during the call (${err.message}), so its outcome is unknown; the server will be reconnected on the next call.`;
  }
  return `MCP server '${namespace}' answered with an error: ${err instanceof Error ? err.message : String(err)}`;
}
