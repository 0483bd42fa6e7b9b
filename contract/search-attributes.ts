/**
 * Custom search attributes that make runs findable in the Temporal UI and
 * visibility queries. Only an API key's id is ever stored, never the key.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const AGENT_MODEL = defineSearchAttributeKey('AgentModel', SearchAttributeType.KEYWORD);
export const AGENT_API_KEY_ID = defineSearchAttributeKey('AgentApiKeyId', SearchAttributeType.KEYWORD);
export const AGENT_TOOLS = defineSearchAttributeKey('AgentTools', SearchAttributeType.KEYWORD_LIST);
export const AGENT_TOTAL_TOKENS = defineSearchAttributeKey('AgentTotalTokens', SearchAttributeType.INT);
/** True while a tool call of the run waits for a reviewer (docs/api.md#b5-approvals); unset on runs that never waited. */
export const AGENT_AWAITING_APPROVAL = defineSearchAttributeKey('AgentAwaitingApproval', SearchAttributeType.BOOL);

/** Every custom attribute a run may carry: registered on the namespace before runs use them. */
export const SEARCH_ATTRIBUTE_KEYS = [AGENT_MODEL, AGENT_API_KEY_ID, AGENT_TOOLS, AGENT_TOTAL_TOKENS, AGENT_AWAITING_APPROVAL] as const;
