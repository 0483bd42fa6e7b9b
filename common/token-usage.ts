/**
 * Tokens per API key and UTC day, counted from the runs' durable totals in
 * Temporal visibility (docs/api.md#b6-budgets): the AgentTotalTokens search
 * attribute of each run's latest execution (earlier executions of a run that
 * continued as new carry a part of the same cumulative total, so they are
 * left out), by the AgentApiKeyId that started it and the UTC day its latest
 * execution started. Nothing is kept in a process: every API process and
 * worker counts the same, also after restarts.
 */
import type { Client } from '@temporalio/client';
import { AGENT_RUN_WORKFLOW } from '../contract/run-contract';
import { AGENT_API_KEY_ID, AGENT_TOTAL_TOKENS } from '../contract/search-attributes';

/** A UTC day as `YYYY-MM-DD`. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** Milliseconds at which a UTC day `YYYY-MM-DD` begins. */
export const dayStartMs = (day: string): number => Date.parse(`${day}T00:00:00.000Z`);
/** One UTC day in milliseconds. */
export const DAY_MS = 86_400_000;

export interface DayUsage {
  day: string;
  api_key_id: string;
  runs: number;
  total_tokens: number;
}

/** Usage from `from` to `to` (UTC days, both included), per key and day, sorted; only `apiKeyId`'s when given. */
export async function tokenUsage(
  client: Client,
  range: { from: string; to: string; apiKeyId?: string; exceptWorkflowId?: string },
): Promise<DayUsage[]> {
  const clauses = [
    `WorkflowType = '${AGENT_RUN_WORKFLOW}'`,
    `ExecutionStatus != 'ContinuedAsNew'`,
    `StartTime >= '${new Date(dayStartMs(range.from)).toISOString()}'`,
    `StartTime < '${new Date(dayStartMs(range.to) + DAY_MS).toISOString()}'`,
  ];
  // Key ids are `key_<hex>`: nothing to escape.
  if (range.apiKeyId) clauses.push(`${AGENT_API_KEY_ID.name} = '${range.apiKeyId}'`);
  const usage = new Map<string, DayUsage>();
  for await (const info of client.workflow.list({ query: clauses.join(' AND '), pageSize: 1000 })) {
    if (info.workflowId === range.exceptWorkflowId) continue;
    const keyId = info.typedSearchAttributes.get(AGENT_API_KEY_ID) ?? '';
    const day = utcDay(info.startTime.getTime());
    const entry = usage.get(`${day} ${keyId}`) ?? { day, api_key_id: keyId, runs: 0, total_tokens: 0 };
    entry.runs++;
    entry.total_tokens += info.typedSearchAttributes.get(AGENT_TOTAL_TOKENS) ?? 0;
    usage.set(`${day} ${keyId}`, entry);
  }
  return [...usage.values()].sort((a, b) => a.day.localeCompare(b.day) || a.api_key_id.localeCompare(b.api_key_id));
}

/** The tokens of a key's runs of one UTC day. */
export async function keyTokensOfDay(client: Client, apiKeyId: string, day: string, exceptWorkflowId?: string): Promise<number> {
  const usage = await tokenUsage(client, { from: day, to: day, apiKeyId, ...(exceptWorkflowId ? { exceptWorkflowId } : {}) });
  return usage.reduce((sum, u) => sum + u.total_tokens, 0);
}
