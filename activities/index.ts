import { JsonSchemas } from '../catalog/json-schema';
import type { AgentActivities } from '../contract/run-contract';
import type { RunnerRegistry } from '../runners/registry';
import type { WorkerConfig } from '../common/config';
import { createModelCaller } from './call-model';
import { ConversationCache } from './conversation-cache';
import { createToolRunner } from './run-tool';
import { createWebhookDeliverer, type WebhookPoster } from './deliver-webhook';
import { keyTokensUsed } from './key-tokens';

export function createActivities(config: WorkerConfig, runners: RunnerRegistry, postWebhook: WebhookPoster): AgentActivities {
  return {
    callModel: createModelCaller(config.inference, new ConversationCache(config.conversationCacheBytes)),
    runTool: createToolRunner(runners, new JsonSchemas(config.toolSchemas)),
    deliverWebhook: createWebhookDeliverer(config.webhooks, postWebhook),
    keyTokensUsed,
  };
}
