/**
 * KEY_DAILY_TOKEN_BUDGET before a run starts (docs/api.md#b6-budgets): a key
 * whose runs used up today's budget (UTC) is refused with a 429 until the day
 * ends; otherwise the run gets the budget to enforce between steps. Usage is
 * counted from the runs' durable totals (common/token-usage.ts), so it is the
 * same in every API process and after restarts.
 */
import type { Client } from '@temporalio/client';
import type { ApiConfig } from '../common/config';
import { dayStartMs, keyTokensOfDay, utcDay } from '../common/token-usage';
import type { KeyBudget } from '../contract/run-contract';
import { ApiError } from './api-error';

export async function dailyBudgetOf(client: Client, config: ApiConfig, apiKeyId: string, searchAttributes: boolean): Promise<KeyBudget | undefined> {
  const dailyTokens = config.keyDailyTokenBudget;
  if (dailyTokens === undefined) return undefined;
  if (!searchAttributes) {
    throw new ApiError(
      503,
      'server_error',
      'KEY_DAILY_TOKEN_BUDGET needs the search attributes AgentApiKeyId and AgentTotalTokens, which are not registered on this namespace',
    );
  }
  const now = Date.now();
  const day = utcDay(now);
  const used = await keyTokensOfDay(client, apiKeyId, day);
  if (used >= dailyTokens) {
    const renewsMs = dayStartMs(day) + 86_400_000;
    throw new ApiError(
      429,
      'rate_limit_error',
      `this key's daily token budget of ${dailyTokens} (KEY_DAILY_TOKEN_BUDGET) is used up for ${day} (${used} tokens); it renews at ${new Date(renewsMs).toISOString()}`,
      {
        headers: {
          'Retry-After': String(Math.ceil((renewsMs - now) / 1000)),
          'X-RateLimit-Limit': String(dailyTokens),
          'X-RateLimit-Remaining': '0',
          'X-RateLimit-Reset': String(renewsMs / 1000),
        },
      },
    );
  }
  return { apiKeyId, dailyTokens, day };
}
