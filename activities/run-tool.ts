/**
 * The tool activity: parse and validate the model's arguments, run the tool,
 * and turn every failure the model should know about into a readable payload.
 */
import { Context } from '@temporalio/activity';
import type { WorkerConfig } from '../common/config';
import type { ResolvedTool, ToolCallInput, ToolCallResult } from '../common/run-contract';
import { callMcpTool } from './mcp/call';
import type { McpPool } from './mcp/pool';
import { validationProblem } from './tools/json-schema';
import { findTool } from './tools/registry';
import { ToolError, type ToolRunContext } from './tools/tool';

type Call = (ctx: ToolRunContext, args: Record<string, unknown>) => Promise<string>;

/** MCP tools are called through the worker's MCP connections, the others by their module. */
function callFor(tool: ResolvedTool, mcp: McpPool): Call | undefined {
  if (tool.type === 'mcp') return (ctx, args) => callMcpTool(mcp, tool, args, ctx);
  const module = findTool(tool.name);
  return module && ((ctx, args) => module.run(ctx, tool.runtime.tool_params, args));
}

export function createToolRunner(config: WorkerConfig, mcp: McpPool) {
  return async function runTool(input: ToolCallInput): Promise<ToolCallResult> {
    const { tool } = input;
    const call = callFor(tool, mcp);
    if (!call) return { payload: `Error: this worker has no tool named '${tool.name}'.` };

    let args: unknown;
    try {
      args = input.arguments.trim() === '' ? {} : JSON.parse(input.arguments);
    } catch (err) {
      return { payload: `Error: the arguments are not valid JSON (${(err as Error).message}); the tool was not run.` };
    }
    const problem = validationProblem(tool.function.parameters, args);
    if (problem) return { payload: `Error: invalid arguments: ${problem}; the tool was not run.` };

    const ctx = Context.current();
    ctx.log.info('running tool', { tool: tool.name, callKey: input.callKey });
    try {
      const payload = await call(
        {
          config,
          runtime: tool.runtime,
          callKey: input.callKey,
          signal: ctx.cancellationSignal,
          heartbeat: (details) => ctx.heartbeat(details),
        },
        args as Record<string, unknown>,
      );
      return { payload };
    } catch (err) {
      if (err instanceof ToolError) return { payload: `Error: ${err.message}` };
      throw err;
    }
  };
}
