/**
 * GET /v1/agents/usage?from=YYYY-MM-DD&to=YYYY-MM-DD (docs/api.md#b6-budgets):
 * tokens and runs per UTC day, of the caller's key (of every key for an
 * admin), counted from the runs' durable totals in Temporal visibility.
 */
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { ApiConfig } from '../common/config';
import { DAY_MS, dayStartMs, tokenUsage, utcDay, type DayUsage } from '../common/token-usage';
import { AGENT_API_KEY_ID, AGENT_TOTAL_TOKENS } from '../contract/search-attributes';
import { invalidRequest, searchAttributesMissing } from './api-error';
import type { Caller } from './auth';

const day = (name: 'from' | 'to') => {
  const problem = `${name} must be a date as YYYY-MM-DD (a UTC day)`;
  return (
    z
      .string({ error: problem })
      .regex(/^\d{4}-\d{2}-\d{2}$/, problem)
      // Date.parse rolls 2026-02-30 over to March: a real day reads back the same.
      .refine((d) => !Number.isNaN(dayStartMs(d)) && utcDay(dayStartMs(d)) === d, problem)
      .optional()
  );
};

/** The query of GET /v1/agents/usage (also in /openapi.json). */
export const usageQuerySchema = z.object({
  from: day('from').meta({ description: 'the first UTC day, YYYY-MM-DD (default today)' }),
  to: day('to').meta({ description: 'the last UTC day, included (default: from, or today when from is earlier)' }),
});

export interface UsageAnswer {
  from: string;
  to: string;
  data: DayUsage[];
  total_tokens: number;
  /** KEY_DAILY_TOKEN_BUDGET, when set. */
  daily_token_budget: number | null;
}

export async function usageOf(
  client: Client,
  config: ApiConfig,
  caller: Caller,
  query: Record<string, unknown>,
  searchAttributes: boolean,
): Promise<UsageAnswer> {
  const parsed = usageQuerySchema.safeParse(query);
  if (!parsed.success) throw invalidRequest(parsed.error.issues[0]?.message ?? 'the query is invalid');
  const today = utcDay(Date.now());
  const from = parsed.data.from ?? today;
  const to = parsed.data.to ?? (from > today ? from : today);
  if (to < from) throw invalidRequest('to must not be before from');
  const days = (dayStartMs(to) - dayStartMs(from)) / DAY_MS + 1;
  if (days > config.usageMaxDays) {
    throw invalidRequest(`from..to spans ${days} days; at most ${config.usageMaxDays} (USAGE_MAX_DAYS)`);
  }
  if (!searchAttributes) {
    throw searchAttributesMissing('usage', [AGENT_API_KEY_ID, AGENT_TOTAL_TOKENS]);
  }
  const data = await tokenUsage(client, { from, to, ...(caller.admin ? {} : { apiKeyId: caller.keyId }) });
  return { from, to, data, total_tokens: data.reduce((sum, d) => sum + d.total_tokens, 0), daily_token_budget: config.keyDailyTokenBudget ?? null };
}
