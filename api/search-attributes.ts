import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../common/search-attributes';

const TYPE = temporal.api.enums.v1.IndexedValueType;
const INDEXED: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: TYPE.INDEXED_VALUE_TYPE_KEYWORD,
  KeywordList: TYPE.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  Int: TYPE.INDEXED_VALUE_TYPE_INT,
};

/**
 * Registers our custom search attributes on the namespace if they are
 * missing. Resolves false (runs then go without them) when that is not
 * allowed, e.g. on a managed service where an operator must add them.
 * Asked once per process, on the first run, so the API can start before Temporal.
 */
export function searchAttributesGate(client: Client, namespace: string, warn: (msg: string) => void): () => Promise<boolean> {
  let answer: Promise<boolean> | undefined;
  return () => {
    answer ??= ensureSearchAttributes(client, namespace, warn).catch((err) => {
      answer = undefined; // Temporal unreachable: ask again next time
      throw err;
    });
    return answer;
  };
}

async function ensureSearchAttributes(client: Client, namespace: string, warn: (msg: string) => void): Promise<boolean> {
  let existing: Record<string, unknown>;
  try {
    existing = (await client.connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    throw new Error(`cannot reach Temporal to check search attributes: ${(err as Error).message}`);
  }
  try {
    const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in existing));
    if (missing.length === 0) return true;
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, INDEXED[type]!])),
    });
    return true;
  } catch (err) {
    warn(`search attributes ${Object.keys(SEARCH_ATTRIBUTES).join(', ')} are not registered and could not be added (${(err as Error).message}); runs will not carry them`);
    return false;
  }
}
