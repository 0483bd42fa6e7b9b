import { Context } from '@temporalio/activity';

/**
 * Heartbeats while `work` is pending. Heartbeats are how an activity learns of
 * cancellation and how Temporal notices a dead worker within the heartbeat timeout.
 */
export async function heartbeatWhile<T>(work: Promise<T>, details?: () => unknown, everyMs = 1_000): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details?.());
  const timer = setInterval(() => ctx.heartbeat(details?.()), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
