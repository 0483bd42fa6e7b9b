/** The activity interface the workflow proxies (types only: no implementation is bundled into workflows). */
import type { ModelCallInput, ModelCallResult, ToolCallInput, ToolCallResult } from '../common/run-contract';

export interface AgentActivities {
  callModel(input: ModelCallInput): Promise<ModelCallResult>;
  runTool(input: ToolCallInput): Promise<ToolCallResult>;
}
