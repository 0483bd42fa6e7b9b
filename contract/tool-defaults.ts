/**
 * Tool limits and defaults both sides of the workflow boundary name
 * (docs/api.md#a3-tool-objects): the request schema and the catalogue apply
 * them, the workflow sizes the tool activity's timeout from them.
 */

/** `runtime_params` a request may leave out. */
export const TOOL_DEFAULTS = {
  ttl_seconds: 120,
  max_calls: 3,
  dyno_size: 'standard-1x',
  /** How long a call of a tool with `requires_approval` waits for a decision before it is denied. */
  approval_timeout_seconds: 86_400,
} as const;

/** The largest `ttl_seconds` of a heroku_tool (mcp tools: MCP_MAX_TTL_SECONDS). */
export const HEROKU_TOOL_MAX_TTL_SECONDS = 120;

/**
 * The tool activity's start-to-close timeout is the tool's ttl plus this
 * margin, which covers a one-off dyno's start-up and clean-up (see
 * STARTUP_TIMEOUT_MS in runtimes/heroku/one-off-dyno.ts).
 */
export const TOOL_ACTIVITY_MARGIN_SECONDS = 30;
