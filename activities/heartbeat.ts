/**
 * The one place that heartbeats: every activity runs inside withHeartbeats.
 * Heartbeats are how an activity learns of cancellation (a model call, a
 * dyno, a sandboxed process, a query or an MCP call then stops within
 * seconds: each passes the activity's cancellation signal on) and how
 * Temporal notices a dead worker within the heartbeat timeout. The first one
 * goes out after HEARTBEAT_INTERVAL_MS, not at the start (a heartbeat costs a
 * round trip that the activity's completion would wait for), then one every
 * HEARTBEAT_INTERVAL_MS, carrying the latest progress details.
 */
import { Context } from '@temporalio/activity';

export const HEARTBEAT_INTERVAL_MS = 1_000;
/**
 * How long an activity may take to stop once its cancellation arrived. After
 * that it is reported cancelled anyway (its work is abandoned), so a run
 * that waits for its activities to acknowledge a cancel is never held by
 * one that does not stop.
 */
export const CANCEL_GRACE_MS = 5_000;

/** Sets the details the next heartbeat carries (shown in the Temporal UI). */
export type Progress = (details: unknown) => void;

export function withHeartbeats<I, R>(activity: (input: I, progress: Progress) => Promise<R>): (input: I) => Promise<R> {
  return async (input) => {
    const ctx = Context.current();
    let details: unknown;
    const beat = (): void => ctx.heartbeat(details);
    let repeat: NodeJS.Timeout | undefined;
    const first = setTimeout(() => {
      beat();
      repeat = setInterval(beat, HEARTBEAT_INTERVAL_MS);
    }, HEARTBEAT_INTERVAL_MS);
    try {
      return await settledByCancel(
        ctx,
        activity(input, (d) => {
          details = d;
        }),
      );
    } finally {
      clearTimeout(first);
      clearInterval(repeat);
    }
  };
}

/**
 * The work's outcome, or, when the run asked to cancel it, the cancellation
 * once CANCEL_GRACE_MS have passed. Work that fails once the run cancelled
 * it fails with the cancellation itself, whatever its runner threw (an
 * aborted fetch, a killed process), so Temporal records the activity as
 * cancelled, not failed. (A worker shutting down or a timeout also cancels
 * the work; those keep their own outcome.)
 */
async function settledByCancel<R>(ctx: Context, work: Promise<R>): Promise<R> {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const askedToCancel = () => ctx.cancellationDetails?.cancelRequested === true;
  const givenUp = ctx.cancelled.catch(
    (reason: unknown) =>
      new Promise<never>((_, reject) => {
        if (!settled && askedToCancel()) timer = setTimeout(() => reject(reason as Error), CANCEL_GRACE_MS);
      }),
  );
  try {
    return await Promise.race([work, givenUp]);
  } catch (err) {
    throw askedToCancel() ? (ctx.cancellationSignal.reason ?? err) : err;
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}
