/**
 * `runtime_params.requires_approval` and `approval_timeout_seconds`
 * (docs/api.md#b5-approvals), for heroku_tools and mcp tools alike: a tool
 * whose calls wait for a reviewer carries its timeout; any other carries
 * nothing, so runs without approvals get the same input as before.
 */
import type { ToolLimits } from '../common/config';
import type { ToolObject } from '../contract/request-schema';
import type { RuntimeParams } from '../contract/run-contract';
import { TOOL_DEFAULTS } from '../contract/tool-defaults';
import { ToolValidationError } from './tool-spec';

export function approvalOf(tool: ToolObject, at: string, limits: ToolLimits): RuntimeParams['approval'] {
  const runtime = tool.runtime_params;
  const timeout = runtime?.approval_timeout_seconds;
  if (timeout !== undefined && timeout > limits.maxApprovalTimeoutSeconds) {
    throw new ToolValidationError(
      `${at}.runtime_params.approval_timeout_seconds must be at most ${limits.maxApprovalTimeoutSeconds} on this server (MAX_APPROVAL_TIMEOUT_SECONDS)`,
    );
  }
  if (timeout !== undefined && runtime?.requires_approval !== true) {
    throw new ToolValidationError(`${at}.runtime_params.approval_timeout_seconds needs requires_approval: true`);
  }
  return runtime?.requires_approval ? { timeout_seconds: timeout ?? TOOL_DEFAULTS.approval_timeout_seconds } : undefined;
}
