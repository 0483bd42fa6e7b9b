/**
 * The tool activity: parse and validate the model's arguments, run the tool,
 * and turn every failure the model should know about into a readable payload
 * (contract/tool-payload.ts's errorPayload, the one path from an error to
 * what the model reads). Anything else fails the activity: Temporal retries
 * it where the tool allows, and the workflow reports the rest.
 */
import { Context } from '@temporalio/activity';
import { SchemaError, type JsonSchemas } from '../catalog/json-schema';
import type { ToolCallInput, ToolCallResult } from '../contract/run-contract';
import { errorPayload } from '../contract/tool-payload';
import type { RunnerRegistry } from '../runners/registry';
import { ToolError } from '../tool-call/tool-error';
import { withHeartbeats } from './heartbeat';

export function createToolRunner(runners: RunnerRegistry, schemas: JsonSchemas) {
  return withHeartbeats(async function runTool(input: ToolCallInput, progress): Promise<ToolCallResult> {
    const { tool } = input;
    const runner = runners(tool);
    if (!runner) return { payload: errorPayload(`this worker has no tool named '${tool.name}'.`) };

    let args: unknown;
    try {
      args = input.arguments.trim() === '' ? {} : JSON.parse(input.arguments);
    } catch (err) {
      return { payload: errorPayload(`the arguments are not valid JSON (${(err as Error).message}); the tool was not run.`) };
    }
    let problem: string | undefined;
    try {
      problem = schemas.validationProblem(tool.function.parameters, args);
    } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      return { payload: errorPayload(`the tool's parameters schema ${err.message}; the tool was not run.`) };
    }
    if (problem) return { payload: errorPayload(`invalid arguments: ${problem}; the tool was not run.`) };

    const ctx = Context.current();
    ctx.log.info(`running tool ${tool.name}`, { tool: tool.name, toolCallId: input.callKey });
    try {
      const payload = await runner.run(
        { runtime: tool.runtime, callKey: input.callKey, signal: ctx.cancellationSignal, progress },
        args as Record<string, unknown>,
      );
      return { payload };
    } catch (err) {
      if (err instanceof ToolError) return { payload: errorPayload(err.message, runner.payload) };
      throw err;
    }
  });
}
