/**
 * The tool registry: turns a request's tool objects into ResolvedTools (the
 * API's validation, spec A3) and finds the module that runs a call (worker).
 */
import { invalidRequest } from '../../common/errors';
import type { ResolvedTool } from '../../common/run-contract';
import { describeIssue, type ToolObject } from '../../common/request-schema';
import { resolveMcpTool, type McpToolCatalog } from '../mcp/resolve';
import { codeExecTools } from './code-exec';
import { dynoRunCommand } from './dyno-run-command';
import { htmlToMarkdown } from './html-to-markdown';
import { pdfToMarkdown } from './pdf-to-markdown';
import { postgresGetSchema } from './postgres-get-schema';
import { postgresRunQuery } from './postgres-run-query';
import type { Tool } from './tool';

const TOOLS: Tool<any>[] = [dynoRunCommand, postgresGetSchema, postgresRunQuery, htmlToMarkdown, pdfToMarkdown, ...codeExecTools];
const BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));

export const HEROKU_TOOL_MAX_TTL_SECONDS = 120;
const DEFAULT_TTL_SECONDS = 120;

export function findTool(name: string): Tool<any> | undefined {
  return BY_NAME.get(name);
}

export async function resolveTools(tools: ToolObject[], mcp: McpToolCatalog): Promise<ResolvedTool[]> {
  const seen = new Set<string>();
  const resolved: ResolvedTool[] = [];
  for (const [i, tool] of tools.entries()) {
    const at = `tools[${i}]`;
    const result = tool.type === 'mcp' ? await resolveMcpTool(tool, at, mcp) : resolveHerokuTool(tool, at);
    // Compared after resolving: an mcp tool may be named bare or namespaced.
    if (seen.has(result.name)) throw invalidRequest(`${at}.name '${tool.name}' is a duplicate: tool names must be unique`);
    seen.add(result.name);
    resolved.push(result);
  }
  return resolved;
}

function resolveHerokuTool(tool: ToolObject, at: string): ResolvedTool {
  const module = BY_NAME.get(tool.name);
  if (!module) {
    throw invalidRequest(`${at}.name '${tool.name}' is not a known heroku_tool; known: ${[...BY_NAME.keys()].join(', ')}`);
  }
  const runtime = tool.runtime_params;
  if (module.requiresApp && !runtime?.target_app_name) {
    throw invalidRequest(`${at}.runtime_params.target_app_name is required for ${tool.name}`);
  }
  const ttl = runtime?.ttl_seconds ?? DEFAULT_TTL_SECONDS;
  if (ttl < 1 || ttl > HEROKU_TOOL_MAX_TTL_SECONDS) {
    throw invalidRequest(`${at}.runtime_params.ttl_seconds must be an integer between 1 and ${HEROKU_TOOL_MAX_TTL_SECONDS}`);
  }
  const parsed = module.toolParams.safeParse(runtime?.tool_params ?? {}, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalidRequest(`${at}.runtime_params.tool_params.${describeIssue(issue)}`);
  }
  const params = parsed.data;
  return {
    name: tool.name,
    type: 'heroku_tool',
    sideEffect: typeof module.sideEffect === 'function' ? module.sideEffect({ target_app_name: runtime?.target_app_name }) : module.sideEffect,
    function: { name: tool.name, ...module.modelFunction(params, tool.description) },
    runtime: {
      ...(runtime?.target_app_name ? { target_app_name: runtime.target_app_name } : {}),
      dyno_size: runtime?.dyno_size ?? 'standard-1x',
      ttl_seconds: ttl,
      max_calls: runtime?.max_calls ?? 3,
      tool_params: params,
    },
  };
}
