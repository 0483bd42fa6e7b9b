/**
 * The one interface every tool implements. Adding a tool is one new module
 * that exports a `Tool` plus one line in ./registry.
 */
import type { z } from 'zod';
import type { FunctionDefinition, RuntimeParams, SideEffectClass } from '../../common/run-contract';
import type { WorkerConfig } from '../../common/config';

export interface ToolRunContext {
  config: WorkerConfig;
  runtime: RuntimeParams;
  /** Stable idempotency key of this call, also given to the tool as TOOL_CALL_ID. */
  callKey: string;
  /** Aborted when the run is cancelled or the activity times out. */
  signal: AbortSignal;
  heartbeat(details?: unknown): void;
}

export interface Tool<Params = Record<string, unknown>> {
  name: string;
  /** Fixed, or decided per request from where the tool runs (e.g. a dyno of `target_app_name` or the local sandbox). */
  sideEffect: SideEffectClass | ((runtime: { target_app_name?: string }) => SideEffectClass);
  /** Whether `runtime_params.target_app_name` is required. */
  requiresApp: boolean;
  /** Validates `runtime_params.tool_params`. */
  toolParams: z.ZodType<Params>;
  /** What the model sees; `description` is the request's optional hint. */
  modelFunction(params: Params, description: string | undefined): Omit<FunctionDefinition, 'name'>;
  /** Runs one call with arguments already validated against the model function's schema; returns the payload. */
  run(ctx: ToolRunContext, params: Params, args: Record<string, unknown>): Promise<string>;
}

/** A tool-level failure the model should read (not retried, not a run failure). */
export class ToolError extends Error {}
