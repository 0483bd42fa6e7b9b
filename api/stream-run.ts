import type { Request, Response } from 'express';
import type { RunFeed } from './run-feeds';
import { DONE_FRAME, KEEP_ALIVE_FRAME, errorFrame, messageFrame, openEventStream } from './sse';

/**
 * Streams a run's events after offset `after` to one client, then follows the
 * run live until it ends. Disconnecting only unsubscribes: the run goes on.
 */
export function streamRun(req: Request, res: Response, feed: RunFeed, runId: string, after: number, keepAliveMs: number): void {
  openEventStream(res, runId);
  let next = after + 1;
  let closed = false;

  const flush = () => {
    if (closed) return;
    while (next < feed.events.length) {
      res.write(messageFrame(next, feed.events[next]!));
      next++;
    }
    if (feed.finished) {
      if (feed.terminal?.error) res.write(errorFrame(feed.terminal.error));
      res.end(DONE_FRAME);
      close();
    }
  };

  const unsubscribe = feed.subscribe(flush);
  const keepAlive = setInterval(() => res.write(KEEP_ALIVE_FRAME), keepAliveMs);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    unsubscribe();
  };
  res.on('close', close);
  flush();
}
