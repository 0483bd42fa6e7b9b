/**
 * What a tool call gets from the tool activity: the request's runtime_params,
 * its idempotency key, its cancellation and a way to show progress. Below the
 * runtimes (runtimes/) and the runners (runners/): both take it, neither
 * depends on the other through it. What a tool needs beyond this (a sandbox, a
 * database URL look-up, ...) its runner is given when the worker starts.
 */
import type { RuntimeParams } from '../contract/run-contract';

export interface ToolRunContext {
  runtime: RuntimeParams;
  /** Stable idempotency key of this call, also given to the tool as TOOL_CALL_ID. */
  callKey: string;
  /** Aborted when the run is cancelled or the activity times out. */
  signal: AbortSignal;
  /** Details for the activity's next heartbeat (shown in the Temporal UI), e.g. the dyno's name. */
  progress(details: unknown): void;
}
