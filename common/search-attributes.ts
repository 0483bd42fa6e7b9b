/** Custom search attributes that make runs findable in the Temporal UI (never a key: only its id). */
export const SEARCH_ATTRIBUTES = {
  AgentModel: 'Keyword',
  AgentApiKeyId: 'Keyword',
  AgentTools: 'KeywordList',
  AgentTotalTokens: 'Int',
} as const;
