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
      return await activity(input, (d) => {
        details = d;
      });
    } finally {
      clearTimeout(first);
      clearInterval(repeat);
    }
  };
}
