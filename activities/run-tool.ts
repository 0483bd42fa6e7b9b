/**
 * The tool activity: parse and validate the model's arguments, run the tool,
 * and turn every failure the model should know about into a readable payload.
 */
import { Context } from '@temporalio/activity';
import type { WorkerConfig } from '../common/config';
import type { ToolCallInput, ToolCallResult } from '../common/run-contract';
import { validationProblem } from './tools/json-schema';
import { findTool } from './tools/registry';
import { ToolError } from './tools/tool';

export function createToolRunner(config: WorkerConfig) {
  return async function runTool(input: ToolCallInput): Promise<ToolCallResult> {
    const { tool } = input;
    const module = findTool(tool.name);
    if (!module) return { payload: `Error: this worker has no tool named '${tool.name}'.` };

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
      const payload = await module.run(
        {
          config,
          runtime: tool.runtime,
          callKey: input.callKey,
          signal: ctx.cancellationSignal,
          heartbeat: (details) => ctx.heartbeat(details),
        },
        tool.runtime.tool_params,
        args as Record<string, unknown>,
      );
      return { payload };
    } catch (err) {
      if (err instanceof ToolError) return { payload: `Error: ${err.message}` };
      throw err;
    }
  };
}
