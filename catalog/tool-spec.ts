/**
 * What the catalogue knows of a heroku_tool: everything the API needs to
 * validate a request and tell the model about the tool, nothing that runs it
 * (that is the tool's runner, on the worker: runners/).
 */
import type { z } from 'zod';
import type { FunctionDefinition, SideEffectClass } from '../contract/run-contract';
import type { PayloadFormat } from '../contract/tool-payload';
import { AppError } from '../common/errors';

export interface ToolSpec<Params = Record<string, unknown>> {
  name: string;
  /** Fixed, or decided per request from where the tool runs (e.g. a dyno of `target_app_name` or the local sandbox). */
  sideEffect: SideEffectClass | ((runtime: { target_app_name?: string }) => SideEffectClass);
  /** Whether `runtime_params.target_app_name` is required. */
  requiresApp: boolean;
  /** How its results and failures reach the model. */
  payload: PayloadFormat;
  /** Validates `runtime_params.tool_params`. */
  toolParams: z.ZodType<Params>;
  /** The JSON Schema of the model's arguments, when the request supplies it: which tool_params field, and the schema. */
  argumentsSchema?(params: Params): { param: string; schema: Record<string, unknown> };
  /** What the model sees; `description` is the request's optional hint. */
  modelFunction(params: Params, description: string | undefined): Omit<FunctionDefinition, 'name'>;
}

/** A request's tool that cannot be used, with a message naming the field (the API answers 400). */
export class ToolValidationError extends AppError {}

/** A request's tool asks for what the operator does not allow (an app, a dyno size); the API answers 403. */
export class ToolNotAllowedError extends AppError {}
