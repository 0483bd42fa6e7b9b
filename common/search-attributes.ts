/**
 * Registers the custom search attributes of runs (contract/search-attributes.ts)
 * on a namespace. One function for both callers: the API, on its first run
 * (runs go without the attributes if that is not allowed), and the embedded
 * dev server, whose CLI registers `--search-attribute`s only when it creates a
 * namespace, so a SQLite file from an older version may lack newer ones.
 */
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_KEYS } from '../contract/search-attributes';
import { AppError } from './errors';

/** An attribute is registered with another type, or the missing ones could not be added. */
export class SearchAttributeError extends AppError {}

/** Adds the attributes the namespace lacks; resolves to their names. Rejects with the connection's own error when Temporal cannot be reached. */
export async function ensureSearchAttributes(
  operator: Connection['operatorService'],
  namespace: string,
  keys: readonly { name: string; type: SearchAttributeType }[] = SEARCH_ATTRIBUTE_KEYS,
): Promise<string[]> {
  const existing = (await operator.listSearchAttributes({ namespace })).customAttributes ?? {};
  const missing: Record<string, number> = {};
  for (const key of keys) {
    const want = temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`];
    const have = existing[key.name];
    if (have === undefined || have === null) missing[key.name] = want;
    else if (Number(have) !== Number(want)) {
      throw new SearchAttributeError(
        `search attribute ${key.name} is already registered in namespace ${namespace} with another type (IndexedValueType ${have}, wanted ${key.type})`,
      );
    }
  }
  if (Object.keys(missing).length === 0) return [];
  try {
    await operator.addSearchAttributes({ namespace, searchAttributes: missing });
    return Object.keys(missing);
  } catch (err) {
    throw new SearchAttributeError(
      `search attributes ${Object.keys(missing).join(', ')} could not be added to namespace ${namespace}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
