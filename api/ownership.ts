/**
 * A run belongs to the key that started it (its id is in the run's memo, and
 * in the AgentApiKeyId search attribute when the namespace has it); admin
 * keys see every run (docs/api.md#part-b-durable-run-extensions).
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { AGENT_API_KEY_ID } from '../contract/search-attributes';
import type { Caller } from './auth';

export const owns = (caller: Caller, run: Pick<WorkflowExecutionInfo, 'memo'>): boolean => caller.admin || run.memo?.apiKeyId === caller.keyId;

/** The visibility filter for the caller's runs; none for an admin, or when runs carry no search attributes (then `owns` filters). */
export function ownerClause(caller: Caller, searchAttributes: boolean): string | undefined {
  // Key ids are `key_<hex>`: nothing to escape.
  return caller.admin || !searchAttributes ? undefined : `${AGENT_API_KEY_ID.name} = '${caller.keyId}'`;
}
