import type { WorkerConfig } from '../common/config';
import type { AgentActivities } from './contract';
import { createModelCaller } from './inference';
import { createToolRunner } from './run-tool';

export function createActivities(config: WorkerConfig): AgentActivities {
  return {
    callModel: createModelCaller(config.inferenceUrl, config.inferenceKey),
    runTool: createToolRunner(config),
  };
}
