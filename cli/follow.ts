/**
 * Follows a run's event stream to its end, resuming by itself: when the
 * connection drops (the API restarted, a proxy cut it), it reconnects to
 * GET /v1/agents/runs/{id}/stream with Last-Event-ID, so every event arrives
 * once, until no progress has been made for `resumeTimeoutMs`.
 */
import { createParser } from 'eventsource-parser';
import { AppError } from '../common/errors';
import type { CompletionEvent, ErrorBody } from '../contract/wire';
import { CliError, EXIT, reason, refusal, request, type Service } from './service';

export interface StreamHandlers {
  /** Called once the run id is known (from the Agent-Run-Id header of the first answer). */
  onRun?(runId: string): void;
  onEvent(event: CompletionEvent, offset: number): void;
  /** A reconnect attempt, and why. */
  onReconnect?(why: string): void;
}

export interface StreamEnd {
  runId: string;
  /** The `event:error` the stream ended with, if any. */
  error?: ErrorBody['error'];
}

const BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection that ended before `event:done`: worth resuming. */
class Dropped extends AppError {}

export interface FollowFrom {
  /**
   * The first request of a new run (its POST), when `runId` is not known
   * yet; must be safe to send again (a POST carries an Idempotency-Key).
   */
  open?: () => Promise<Response>;
  /** A known run, streamed after offset `after`. */
  runId?: string;
  after?: number;
  resumeTimeoutMs: number;
}

export async function followRun(service: Service, handlers: StreamHandlers, from: FollowFrom): Promise<StreamEnd> {
  let runId = from.runId;
  let last = from.after ?? -1;
  let progressAt = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const res = runId === undefined ? await (from.open ?? missingRun)() : await resume(service, runId, last);
      if (!res.ok) {
        throw await refusal(res);
      }
      const id = runId ?? res.headers.get('agent-run-id') ?? undefined;
      if (!id) throw new CliError('the service answered without an Agent-Run-Id header: is AGENTS_URL this service?', EXIT.unavailable);
      if (runId === undefined) handlers.onRun?.(id);
      runId = id;
      const end = await readStream(res, (event, offset) => {
        if (offset <= last) return; // already shown before the reconnect
        last = offset;
        progressAt = Date.now();
        attempt = 0;
        handlers.onEvent(event, offset);
      });
      return { runId, ...end };
    } catch (err) {
      const why = err instanceof Dropped || err instanceof CliError ? err.message : `the connection dropped: ${reason(err)}`;
      // Before the run is known there is nothing to resume; a 4xx will not get better by trying again.
      if (runId === undefined) throw err instanceof CliError ? err : new CliError(why, EXIT.unavailable, { cause: err });
      if (err instanceof CliError && err.exitCode !== EXIT.unavailable) throw err;
      if (Date.now() - progressAt > from.resumeTimeoutMs) {
        throw new CliError(
          `gave up resuming ${runId ?? 'the run'} after ${Math.round(from.resumeTimeoutMs / 1000)} s without progress (${why})`,
          EXIT.unavailable,
        );
      }
      handlers.onReconnect?.(why);
      await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!);
    }
  }
}

const missingRun = () => Promise.reject(new CliError('no run to follow', EXIT.usage));

function resume(service: Service, runId: string, last: number): Promise<Response> {
  return request(service, `/v1/agents/runs/${encodeURIComponent(runId)}/stream`, { headers: { 'Last-Event-ID': String(last) } });
}

/** Reads one connection's frames; resolves at `event:done`, rejects with Dropped when the body ends before it. */
async function readStream(res: Response, onEvent: (event: CompletionEvent, offset: number) => void): Promise<{ error?: ErrorBody['error'] }> {
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    throw new CliError(`the service answered ${res.headers.get('content-type') ?? 'no content type'} instead of an event stream`, EXIT.unavailable);
  }
  let done = false;
  let error: ErrorBody['error'] | undefined;
  const parser = createParser({
    onEvent: (frame) => {
      if (frame.event === 'message') onEvent(JSON.parse(frame.data) as CompletionEvent, Number(frame.id));
      else if (frame.event === 'error') error = (JSON.parse(frame.data) as ErrorBody).error;
      else if (frame.event === 'done') done = true;
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body ?? []) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (done) return { error };
    }
  } catch (err) {
    throw new Dropped(`the connection dropped: ${reason(err)}`);
  }
  throw new Dropped('the stream ended before the run did');
}
