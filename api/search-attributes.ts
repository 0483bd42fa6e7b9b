import type { Client } from '@temporalio/client';
import { AppError } from '../common/errors';
import { ensureSearchAttributes, SearchAttributeError } from '../common/search-attributes';

/**
 * Whether runs may carry our custom search attributes: registers them on the
 * namespace if they are missing. Resolves false (runs then go without them)
 * when that is not allowed, e.g. on a managed service where an operator must
 * add them. Asked once per process, on the first run, so the API can start
 * before Temporal.
 */
export function searchAttributesGate(client: Client, namespace: string, warn: (msg: string) => void): () => Promise<boolean> {
  let answer: Promise<boolean> | undefined;
  return () => {
    answer ??= ensureSearchAttributes(client.connection, namespace).then(
      () => true,
      (err: unknown) => {
        if (err instanceof SearchAttributeError) {
          warn(`${err.message}; runs will not carry them`);
          return false;
        }
        answer = undefined; // Temporal unreachable: ask again next time
        throw new AppError(`cannot reach Temporal to check search attributes: ${(err as Error).message}`, { cause: err });
      },
    );
    return answer;
  };
}
