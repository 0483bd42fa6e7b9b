import type { WorkerConfig } from '../common/config';
import type { AgentActivities } from './contract';
import { createModelCaller } from './inference';
import type { McpPool } from './mcp/pool';
import { createToolRunner } from './run-tool';

export function createActivities(config: WorkerConfig, mcp: McpPool): AgentActivities {
  return {
    callModel: createModelCaller(config.inferenceUrl, config.inferenceKey),
    runTool: createToolRunner(config, mcp),
  };
}
