/**
 * The runner registry: which code runs a call of a resolved tool. Built once
 * per worker, with what each tool needs and nothing more: the commands get
 * the CommandRuntime (Heroku token, sandbox), the database tools the
 * read-only database pools (which alone see `<ATTACHMENT>_URL`), the web tools
 * FETCH_ALLOW_HOSTS, their limits and the document converter, MCP tools the
 * MCP connections. A new tool is a spec in catalog/resolve-tools.ts and one line
 * in RUNNERS below.
 */
import { TOOL_SPECS } from '../catalog/resolve-tools';
import type { ResolvedTool } from '../contract/run-contract';
import type { PayloadFormat } from '../contract/tool-payload';
import type { WebToolLimits } from '../common/config';
import type { AllowEntry } from '../common/host-list';
import { AppError } from '../common/errors';
import type { McpPool } from '../mcp/pool';
import type { CommandRuntime } from '../runtimes/command-runtime';
import type { DocumentConverter } from '../runtimes/documents/converter';
import type { ReadOnlyDatabases } from '../runtimes/postgres/session';
import type { ToolRunContext } from '../tool-call/context';
import { codeExecRunners } from './code-exec';
import { dynoRunCommandRunner } from './dyno-run-command';
import { htmlToMarkdownRunner } from './html-to-markdown';
import { callMcpTool } from './mcp';
import { pdfToMarkdownRunner } from './pdf-to-markdown';
import { postgresGetSchemaRunner } from './postgres-get-schema';
import { postgresRunQueryRunner } from './postgres-run-query';
import type { ToolRunner } from './runner';

export interface RunnerDeps {
  commands: CommandRuntime;
  databases: ReadOnlyDatabases;
  fetchAllowHosts: AllowEntry[];
  web: WebToolLimits;
  converter: DocumentConverter;
  mcp: McpPool;
}

const RUNNERS = (deps: RunnerDeps): ToolRunner[] => [
  dynoRunCommandRunner(deps.commands),
  postgresGetSchemaRunner(deps.databases),
  postgresRunQueryRunner(deps.databases),
  htmlToMarkdownRunner(deps.fetchAllowHosts, deps.web, deps.converter),
  pdfToMarkdownRunner(deps.fetchAllowHosts, deps.web, deps.converter),
  ...codeExecRunners(deps.commands),
];

/** One call of one resolved tool, ready to run. */
export interface BoundRunner {
  /** How the tool's results and failures reach the model. */
  payload: PayloadFormat;
  run(ctx: ToolRunContext, args: Record<string, unknown>): Promise<string>;
}

export type RunnerRegistry = (tool: ResolvedTool) => BoundRunner | undefined;

/** Throws at start when a catalogued tool has no runner. */
export function createRunners(deps: RunnerDeps): RunnerRegistry {
  const byName = new Map(RUNNERS(deps).map((r) => [r.spec.name, r]));
  const missing = TOOL_SPECS.filter((spec) => !byName.has(spec.name)).map((spec) => spec.name);
  if (missing.length) throw new AppError(`no runner for the catalogued tool(s) ${missing.join(', ')}`);
  return (tool) => {
    if (tool.type === 'mcp') return { payload: 'call-tool-result', run: (ctx, args) => callMcpTool(deps.mcp, tool, args, ctx) };
    const runner = byName.get(tool.name);
    return runner && { payload: runner.spec.payload, run: (ctx, args) => runner.run(ctx, tool.runtime.tool_params, args) };
  };
}
