/**
 * Custom search attributes that make runs findable in the Temporal UI and
 * visibility queries. Only an API key's id is ever stored, never the key.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const AGENT_MODEL = defineSearchAttributeKey('AgentModel', SearchAttributeType.KEYWORD);
export const AGENT_API_KEY_ID = defineSearchAttributeKey('AgentApiKeyId', SearchAttributeType.KEYWORD);
export const AGENT_TOOLS = defineSearchAttributeKey('AgentTools', SearchAttributeType.KEYWORD_LIST);
export const AGENT_TOTAL_TOKENS = defineSearchAttributeKey('AgentTotalTokens', SearchAttributeType.INT);

/** The same attributes in the form `temporal server start-dev --search-attribute Name=Type` takes. */
export const SEARCH_ATTRIBUTES = {
  AgentModel: 'Keyword',
  AgentApiKeyId: 'Keyword',
  AgentTools: 'KeywordList',
  AgentTotalTokens: 'Int',
} as const;
