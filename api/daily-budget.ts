/**
 * KEY_DAILY_TOKEN_BUDGET before a run starts (docs/api.md#b6-budgets): a key
 * whose runs used up today's budget (UTC) is refused with a 429 until the day
 * ends; otherwise the run gets the budget to enforce between steps. Usage is
 * counted from the runs' durable totals (common/token-usage.ts), so it is the
 * same in every API process and after restarts.
 */
import type { Client } from '@temporalio/client';
import type { ApiConfig } from '../common/config';
import { DAY_MS, dayStartMs, keyTokensOfDay, utcDay } from '../common/token-usage';
import { AGENT_API_KEY_ID, AGENT_TOTAL_TOKENS } from '../contract/search-attributes';
import type { KeyBudget } from '../contract/run-contract';
import { rateLimited, searchAttributesMissing } from './api-error';

export async function dailyBudgetOf(client: Client, config: ApiConfig, apiKeyId: string, searchAttributes: boolean): Promise<KeyBudget | undefined> {
  const dailyTokens = config.keyDailyTokenBudget;
  if (dailyTokens === undefined) return undefined;
  if (!searchAttributes) {
    throw searchAttributesMissing('KEY_DAILY_TOKEN_BUDGET', [AGENT_API_KEY_ID, AGENT_TOTAL_TOKENS]);
  }
  const now = Date.now();
  const day = utcDay(now);
  const used = await keyTokensOfDay(client, apiKeyId, day);
  if (used >= dailyTokens) {
    const renewsMs = dayStartMs(day) + DAY_MS;
    throw rateLimited(
      `this key's daily token budget of ${dailyTokens} (KEY_DAILY_TOKEN_BUDGET) is used up for ${day} (${used} tokens); it renews at ${new Date(renewsMs).toISOString()}`,
      {
        'Retry-After': String(Math.ceil((renewsMs - now) / 1000)),
        'X-RateLimit-Limit': String(dailyTokens),
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': String(renewsMs / 1000),
      },
    );
  }
  return { apiKeyId, dailyTokens, day };
}
