/**
 * GET /v1/agents/usage?from=YYYY-MM-DD&to=YYYY-MM-DD (docs/api.md#b6-budgets):
 * tokens and runs per UTC day, of the caller's key (of every key for an
 * admin), counted from the runs' durable totals in Temporal visibility.
 */
import type { Client } from '@temporalio/client';
import type { ApiConfig } from '../common/config';
import { dayStartMs, tokenUsage, utcDay, type DayUsage } from '../common/token-usage';
import { ApiError, invalidRequest } from './api-error';
import type { Caller } from './auth';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function dayParam(query: Record<string, unknown>, name: 'from' | 'to', fallback: string): string {
  const raw = query[name];
  if (raw === undefined) return fallback;
  const ms = typeof raw === 'string' && DAY.test(raw) ? dayStartMs(raw) : NaN;
  // Date.parse rolls 2026-02-30 over to March: a real day reads back the same.
  if (Number.isNaN(ms) || utcDay(ms) !== raw) {
    throw invalidRequest(`${name} must be a date as YYYY-MM-DD (a UTC day)`);
  }
  return raw;
}

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
  const today = utcDay(Date.now());
  const from = dayParam(query, 'from', today);
  const to = dayParam(query, 'to', from > today ? from : today);
  if (to < from) throw invalidRequest('to must not be before from');
  const days = (dayStartMs(to) - dayStartMs(from)) / 86_400_000 + 1;
  if (days > config.usageMaxDays) {
    throw invalidRequest(`from..to spans ${days} days; at most ${config.usageMaxDays} (USAGE_MAX_DAYS)`);
  }
  if (!searchAttributes) {
    throw new ApiError(
      503,
      'server_error',
      'usage needs the search attributes AgentApiKeyId and AgentTotalTokens, which are not registered on this namespace',
    );
  }
  const data = await tokenUsage(client, { from, to, ...(caller.admin ? {} : { apiKeyId: caller.keyId }) });
  return { from, to, data, total_tokens: data.reduce((sum, d) => sum + d.total_tokens, 0), daily_token_budget: config.keyDailyTokenBudget ?? null };
}
