/**
 * The worker's side of an MCP tool call: tools/call on the server's
 * connection, bounded by ttl_seconds. The payload is the server's
 * CallToolResult as JSON (spec A5); a failure to get one is an `isError`
 * result the model can read.
 */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedTool } from '../../common/run-contract';
import { callToolResult } from '../tools/call-tool-result';
import type { ToolRunContext } from '../tools/tool';
import { McpConnectionError, type McpPool } from './pool';
import { splitMcpName } from './resolve';

const HEARTBEAT_MS = 5_000;

export async function callMcpTool(pool: McpPool, tool: ResolvedTool, args: Record<string, unknown>, ctx: ToolRunContext): Promise<string> {
  const split = splitMcpName(tool.name);
  const server = split && pool.server(split.namespace);
  if (!split || !server) return callToolResult(`Error: this worker has no MCP server for '${tool.name}' (MCP_SERVERS).`, true);

  const ttl = ctx.runtime.ttl_seconds;
  const heartbeat = setInterval(() => ctx.heartbeat(), HEARTBEAT_MS);
  try {
    const result = await server.callTool(split.tool, args, { timeoutMs: ttl * 1000, signal: ctx.signal });
    // Verbatim, with `isError` always present as in Heroku's payloads.
    return JSON.stringify({ ...result, isError: result.isError === true });
  } catch (err) {
    if (ctx.signal.aborted) throw err; // the run was cancelled or the activity timed out
    return callToolResult(`Error: ${describeFailure(err, tool.name, server.namespace, ttl)}`, true);
  } finally {
    clearInterval(heartbeat);
  }
}

function describeFailure(err: unknown, name: string, namespace: string, ttl: number): string {
  if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
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
