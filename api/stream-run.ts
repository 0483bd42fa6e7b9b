import type { Request, Response } from 'express';
import { countOpenStream } from './metrics';
import type { RunFeed } from './run-feeds';
import { DONE_FRAME, KEEP_ALIVE_FRAME, errorFrame, messageFrame, openEventStream } from './sse';

/**
 * The open streams of this API process, so that a shutdown can end each one
 * cleanly instead of cutting it: the client then resumes with Last-Event-ID
 * against another (or the restarted) API process and misses nothing.
 */
export class OpenStreams {
  /** Each open stream's `end`, and how many bytes it holds that its client has not taken yet. */
  private readonly open = new Map<() => Promise<void>, () => number>();
  private ending = false;

  /** Registers a stream's `end`; during a shutdown it is called at once. Returns the function that forgets it. */
  track(end: () => Promise<void>, buffered: () => number): () => void {
    if (this.ending) {
      void end();
      return () => {};
    }
    this.open.set(end, buffered);
    return () => this.open.delete(end);
  }

  /** How many streams are open, and the bytes written to them that their clients have not read (for /healthz). */
  stats(): { open: number; buffered_bytes: number } {
    let bytes = 0;
    for (const buffered of this.open.values()) bytes += buffered();
    return { open: this.open.size, buffered_bytes: bytes };
  }

  /** Ends every open stream, and every stream opened from now on; resolves once those open now are flushed. */
  async endAll(): Promise<void> {
    this.ending = true;
    await Promise.all([...this.open.keys()].map((end) => end()));
  }
}

/**
 * Streams a run's events after offset `after` to one client, then follows the
 * run live until it ends. Disconnecting only unsubscribes: the run goes on.
 * Writes wait for `drain`: a client that reads slowly, or not at all, holds
 * at most one frame beyond the socket's buffer here (the events themselves
 * are the feed's, shared by every client of the run).
 */
export function streamRun(req: Request, res: Response, feed: RunFeed, runId: string, after: number, keepAliveMs: number, streams: OpenStreams): void {
  openEventStream(res, runId);
  countOpenStream(res);
  let next = after + 1;
  let closed = false;
  /** The socket's buffer is full: nothing more is written until it drains. */
  let draining = false;
  let forget = () => {};

  const write = (frame: string) => {
    if (res.write(frame)) return;
    draining = true;
    res.once('drain', () => {
      draining = false;
      flush();
    });
  };

  const flush = () => {
    for (let event = feed.events[next]; !closed && !draining && event; event = feed.events[next]) write(messageFrame(next++, event));
    if (closed || draining || next < feed.events.length || !feed.finished) return;
    if (feed.terminal?.error) res.write(errorFrame(feed.terminal.error));
    res.end(DONE_FRAME);
    close();
  };

  const unsubscribe = feed.subscribe(flush);
  // A client that is not reading needs no keep-alive: its connection is anything but idle.
  const keepAlive = setInterval(() => {
    if (!draining) write(KEEP_ALIVE_FRAME);
  }, keepAliveMs);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    unsubscribe();
    forget();
  };
  res.on('close', close);
  flush();
  if (closed) return;
  // Shutting down: a last comment (no `done`: the run goes on) and a clean end of the body.
  forget = streams.track(
    () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        close();
        res.end(KEEP_ALIVE_FRAME, resolve);
      }),
    () => res.writableLength,
  );
}
