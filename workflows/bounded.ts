/**
 * Runs tasks at most `limit` at a time, in the order given; returns one
 * promise per task, so callers can take the results in order while later
 * tasks still run. Deterministic in workflow code: tasks start in order as
 * earlier ones settle. Every returned promise has a handler attached, so a
 * rejection the caller has not reached yet is not an unhandled one.
 */
export function boundedInOrder<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T>[] {
  let next = 0;
  const settle: { resolve: (value: T) => void; reject: (err: unknown) => void }[] = [];
  const results = tasks.map(
    () =>
      new Promise<T>((resolve, reject) => {
        settle.push({ resolve, reject });
      }),
  );
  const launch = (): void => {
    const i = next++;
    const task = tasks[i];
    const done = settle[i];
    if (!task || !done) return;
    void task().then(done.resolve, done.reject).finally(launch);
  };
  for (let i = 0; i < Math.max(1, limit); i++) launch();
  for (const result of results) result.catch(() => undefined);
  return results;
}
