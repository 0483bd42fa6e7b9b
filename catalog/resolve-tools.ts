/**
 * The tool catalogue: every heroku_tool's spec, and the API's validation of a
 * request's tools (docs/api.md#a3-tool-objects), which turns them into the
 * ResolvedTools the workflow gets. Imports no runtime: the API loads this,
 * not the code that runs tools. A new tool is a spec here and a runner in
 * runners/registry.ts.
 */
import type { ToolLimits } from '../common/config';
import { describeIssue, type ToolObject } from '../contract/request-schema';
import type { ResolvedTool } from '../contract/run-contract';
import { HEROKU_TOOL_MAX_TTL_SECONDS, TOOL_DEFAULTS } from '../contract/tool-defaults';
import { codeExecTools } from './code-exec';
import { dynoRunCommand } from './dyno-run-command';
import type { JsonSchemas } from './json-schema';
import { resolveMcpTool, type McpToolCatalog } from './mcp-tools';
import { postgresGetSchema, postgresRunQuery } from './postgres';
import { approvalOf } from './approval';
import { checkRuntimeLimits } from './runtime-limits';
import { ToolValidationError, type ToolSpec } from './tool-spec';
import { htmlToMarkdown, pdfToMarkdown } from './web';

export const TOOL_SPECS: readonly ToolSpec[] = [dynoRunCommand, postgresGetSchema, postgresRunQuery, htmlToMarkdown, pdfToMarkdown, ...codeExecTools];
const BY_NAME = new Map(TOOL_SPECS.map((t) => [t.name, t]));

/** What a request's tools are checked against: the MCP servers' tools, the JSON Schema checks and the operator's limits. */
export interface ToolCatalog {
  mcp: McpToolCatalog;
  schemas: JsonSchemas;
  limits: ToolLimits;
}

/** Throws ToolValidationError (or ToolNotAllowedError) naming the first tool field at fault. */
export async function resolveTools(tools: ToolObject[], catalog: ToolCatalog): Promise<ResolvedTool[]> {
  const seen = new Set<string>();
  const resolved: ResolvedTool[] = [];
  for (const [i, tool] of tools.entries()) {
    const at = `tools[${i}]`;
    const result = tool.type === 'mcp' ? await resolveMcpTool(tool, at, catalog.mcp, catalog.schemas) : resolveHerokuTool(tool, at, catalog.schemas);
    checkRuntimeLimits(tool, result, at, catalog.limits);
    const approval = approvalOf(tool, at, catalog.limits);
    if (approval) result.runtime.approval = approval;
    // Compared after resolving: an mcp tool may be named bare or namespaced.
    if (seen.has(result.name)) throw new ToolValidationError(`${at}.name '${tool.name}' is a duplicate: tool names must be unique`);
    seen.add(result.name);
    resolved.push(result);
  }
  return resolved;
}

function resolveHerokuTool(tool: ToolObject, at: string, schemas: JsonSchemas): ResolvedTool {
  const spec = BY_NAME.get(tool.name);
  if (!spec) {
    throw new ToolValidationError(`${at}.name '${tool.name}' is not a known heroku_tool; known: ${[...BY_NAME.keys()].join(', ')}`);
  }
  const runtime = tool.runtime_params;
  if (spec.requiresApp && !runtime?.target_app_name) {
    throw new ToolValidationError(`${at}.runtime_params.target_app_name is required for ${tool.name}`);
  }
  const ttl = runtime?.ttl_seconds ?? TOOL_DEFAULTS.ttl_seconds;
  if (ttl < 1 || ttl > HEROKU_TOOL_MAX_TTL_SECONDS) {
    throw new ToolValidationError(`${at}.runtime_params.ttl_seconds must be an integer between 1 and ${HEROKU_TOOL_MAX_TTL_SECONDS}`);
  }
  const parsed = spec.toolParams.safeParse(runtime?.tool_params ?? {}, { reportInput: true });
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    throw new ToolValidationError(`${at}.runtime_params.tool_params.${issue ? describeIssue(issue) : 'are invalid'}`);
  }
  const params = parsed.data;
  const requested = spec.argumentsSchema?.(params);
  const problem = requested && schemas.problem(requested.schema);
  if (requested && problem) throw new ToolValidationError(`${at}.runtime_params.tool_params.${requested.param} ${problem}`);
  return {
    name: tool.name,
    type: 'heroku_tool',
    sideEffect: typeof spec.sideEffect === 'function' ? spec.sideEffect({ target_app_name: runtime?.target_app_name }) : spec.sideEffect,
    function: { name: tool.name, ...spec.modelFunction(params, tool.description) },
    runtime: {
      ...(runtime?.target_app_name ? { target_app_name: runtime.target_app_name } : {}),
      dyno_size: runtime?.dyno_size ?? TOOL_DEFAULTS.dyno_size,
      ttl_seconds: ttl,
      max_calls: runtime?.max_calls ?? TOOL_DEFAULTS.max_calls,
      tool_params: params,
    },
  };
}
