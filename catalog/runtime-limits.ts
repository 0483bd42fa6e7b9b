/**
 * What a request may ask of the operator's Heroku account and of a tool
 * (docs/api.md#part-c-configuration): the apps `target_app_name` may name
 * (HEROKU_APPS), the dyno sizes (DYNO_SIZES) and the largest `max_calls`
 * (MAX_TOOL_CALLS). A request outside the allow-lists is refused before its
 * run starts (403), so the Heroku token's authority goes no further than the
 * operator chose.
 */
import type { ToolLimits } from '../common/config';
import type { ToolObject } from '../contract/request-schema';
import type { ResolvedTool } from '../contract/run-contract';
import { ToolNotAllowedError, ToolValidationError } from './tool-spec';

export function checkRuntimeLimits(tool: ToolObject, resolved: ResolvedTool, at: string, limits: ToolLimits): void {
  const runtime = resolved.runtime;
  if (runtime.max_calls > limits.maxToolCalls) {
    throw new ToolValidationError(`${at}.runtime_params.max_calls must be at most ${limits.maxToolCalls} on this server (MAX_TOOL_CALLS)`);
  }
  // Tools that ignore the app (database, mcp) are held to the list too: a request may name only allowed apps.
  const app = tool.runtime_params?.target_app_name;
  if (app !== undefined && !allows(limits.herokuApps, app)) {
    throw new ToolNotAllowedError(
      `${at}.runtime_params.target_app_name '${app}' is not allowed on this server (HEROKU_APPS: ${limits.herokuApps.join(', ')})`,
    );
  }
  // A dyno runs where a heroku_tool names an app; its size is the request's or the default.
  const size = tool.runtime_params?.dyno_size ?? (resolved.type === 'heroku_tool' && app !== undefined ? runtime.dyno_size : undefined);
  if (size !== undefined && !allows(limits.dynoSizes, size)) {
    const which = tool.runtime_params?.dyno_size === undefined ? ' (the default)' : '';
    throw new ToolNotAllowedError(
      `${at}.runtime_params.dyno_size '${size}'${which} is not allowed on this server (DYNO_SIZES: ${limits.dynoSizes.join(', ')})`,
    );
  }
}

/** An empty list allows anything. */
const allows = (list: string[], value: string) => list.length === 0 || list.includes(value);
