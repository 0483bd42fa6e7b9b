/**
 * The keyTokensUsed activity: how many tokens the other runs of a key used on
 * a UTC day, counted in Temporal visibility with the worker's own client, so
 * a run enforces its key's daily budget (KEY_DAILY_TOKEN_BUDGET) between
 * steps with what every process of the service sees.
 */
import { Context } from '@temporalio/activity';
import { keyTokensOfDay } from '../common/token-usage';
import type { KeyTokensInput } from '../contract/run-contract';

export async function keyTokensUsed({ apiKeyId, day, exceptWorkflowId }: KeyTokensInput): Promise<number> {
  return keyTokensOfDay(Context.current().client, apiKeyId, day, exceptWorkflowId);
}
