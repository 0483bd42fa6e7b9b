/** What the property-based tests (fast-check) share. */
import fc from 'fast-check';

/** fast-check's report names the counterexample; the test runner shows only the message, so add the failure itself. */
export function withCause(err: unknown): never {
  const cause = (err as { cause?: unknown }).cause;
  throw new Error(`${(err as Error).message}\nFailure: ${cause instanceof Error ? cause.message : String(cause)}`);
}

/** Any JSON value, a few levels deep. */
export const jsonValue = fc.jsonValue({ maxDepth: 5 });

/** Short text, printable or not, and some strings that tend to break parsers. */
export const text = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', ' ', '-1', '1e309', 'null', '%', '%00', '../..', '😀'),
);
