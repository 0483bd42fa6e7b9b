import type { ToolSpec } from '../catalog/tool-spec';
import type { ToolRunContext } from '../tool-call/context';

/**
 * Runs the calls of one catalogued tool. `params` are the request's
 * tool_params as its spec parsed them; `args` are the model's arguments,
 * already checked against the tool's JSON Schema. Returns the payload; a
 * failure the model should read is thrown as a ToolError.
 */
export interface ToolRunner<Params = Record<string, unknown>> {
  spec: ToolSpec<Params>;
  run(ctx: ToolRunContext, params: Params, args: Record<string, unknown>): Promise<string>;
}

export function runner<Params>(spec: ToolSpec<Params>, run: ToolRunner<Params>['run']): ToolRunner<Params> {
  return { spec, run };
}
