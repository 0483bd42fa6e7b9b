import type { temporal } from '@temporalio/proto';

/** A poller not seen for longer than one long-poll (60 s) and a margin is gone. */
const POLLER_FRESHNESS_MS = 70_000;

/** How many of a task queue's pollers are alive. */
export function countLivePollers(pollers: temporal.api.taskqueue.v1.IPollerInfo[] | null | undefined, now = Date.now()): number {
  return (pollers ?? []).filter((p) => Number(p.lastAccessTime?.seconds ?? 0) * 1000 >= now - POLLER_FRESHNESS_MS).length;
}
