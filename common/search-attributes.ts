/**
 * Registers the custom search attributes of runs (contract/search-attributes.ts)
 * on a namespace. One function for both callers: the API, on its first run
 * (runs go without the attributes if that is not allowed), and the embedded
 * dev server, whose CLI registers `--search-attribute`s only when it creates a
 * namespace, so a SQLite file from an older version may lack newer ones.
 */
import type { ConnectionLike } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTE_KEYS } from '../contract/search-attributes';
import { AppError } from './errors';

/** An attribute is registered with another type, or the missing ones could not be added. */
export class SearchAttributeError extends AppError {}

type Key = { name: string; type: SearchAttributeType };

/**
 * How long newly added attributes may take to become usable. A server maps
 * them through its namespace cache, which it refreshes every few seconds; a
 * run started before that fails with "no mapping defined for search attribute".
 */
const USABLE_WITHIN_MS = 30_000;
const USABLE_POLL_MS = 200;

/** A value of each type for a visibility query that names every attribute. */
const SAMPLE_VALUE: Record<SearchAttributeType, string> = {
  TEXT: "'x'",
  KEYWORD: "'x'",
  KEYWORD_LIST: "'x'",
  INT: '0',
  DOUBLE: '0',
  BOOL: 'true',
  DATETIME: "'2000-01-01T00:00:00Z'",
};

/**
 * Adds the attributes the namespace lacks, and resolves once a run can use
 * them; resolves to the names it added. Rejects with the connection's own
 * error when Temporal cannot be reached.
 */
export async function ensureSearchAttributes(
  connection: Pick<ConnectionLike, 'operatorService' | 'workflowService'>,
  namespace: string,
  keys: readonly Key[] = SEARCH_ATTRIBUTE_KEYS,
): Promise<string[]> {
  const existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
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
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    throw new SearchAttributeError(
      `search attributes ${Object.keys(missing).join(', ')} could not be added to namespace ${namespace}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  await untilUsable(connection.workflowService, namespace, keys);
  return Object.keys(missing);
}

/** Resolves once a visibility query that names every attribute is accepted. */
async function untilUsable(service: ConnectionLike['workflowService'], namespace: string, keys: readonly Key[]): Promise<void> {
  const query = keys.map((key) => `${key.name} = ${SAMPLE_VALUE[key.type]}`).join(' AND ');
  const deadline = Date.now() + USABLE_WITHIN_MS;
  for (;;) {
    try {
      await service.countWorkflowExecutions({ namespace, query });
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new SearchAttributeError(
          `search attributes ${keys.map((k) => k.name).join(', ')} were added to namespace ${namespace} ` +
            `but are still not usable after ${USABLE_WITHIN_MS / 1000} s: ${(err as Error).message}`,
          { cause: err },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, USABLE_POLL_MS));
    }
  }
}
