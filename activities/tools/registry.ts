/**
 * The tool registry: turns a request's tool objects into ResolvedTools (the
 * API's validation, spec A3) and finds the module that runs a call (worker).
 */
import { invalidRequest } from '../../common/errors';
import type { ResolvedTool } from '../../common/run-contract';
import { describeIssue, type ToolObject } from '../../common/request-schema';
import { dynoRunCommand } from './dyno-run-command';
import type { Tool } from './tool';

const TOOLS: Tool<any>[] = [dynoRunCommand];
const BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));

/** Heroku documents these; requests naming them get a clear "not yet" instead of "unknown". */
const NOT_YET_AVAILABLE = new Set([
  'postgres_get_schema',
  'postgres_run_query',
  'html_to_markdown',
  'pdf_to_markdown',
  'code_exec_python',
  'code_exec_node',
  'code_exec_ruby',
  'code_exec_go',
]);

export const HEROKU_TOOL_MAX_TTL_SECONDS = 120;
const DEFAULT_TTL_SECONDS = 120;

export function findTool(name: string): Tool<any> | undefined {
  return BY_NAME.get(name);
}

export function resolveTools(tools: ToolObject[]): ResolvedTool[] {
  const seen = new Set<string>();
  return tools.map((tool, i) => {
    const at = `tools[${i}]`;
    if (seen.has(tool.name)) throw invalidRequest(`${at}.name '${tool.name}' is a duplicate: tool names must be unique`);
    seen.add(tool.name);
    if (tool.type === 'mcp') throw invalidRequest(`${at}: MCP tools are not available yet on this server`);
    return resolveHerokuTool(tool, at);
  });
}

function resolveHerokuTool(tool: ToolObject, at: string): ResolvedTool {
  const module = BY_NAME.get(tool.name);
  if (!module) {
    if (NOT_YET_AVAILABLE.has(tool.name)) throw invalidRequest(`${at}.name '${tool.name}' is not available yet on this server`);
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
    sideEffect: module.sideEffect,
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
