/**
 * One client of the load test: starts a run with an Idempotency-Key and reads
 * its stream to the end, moving to the next API whenever one fails. Before the
 * run id is known it repeats the POST (the key attaches to the same run, from
 * its first event); after, it resumes the stream with Last-Event-ID. It counts
 * what a user would notice: events missing or seen twice, how the run ended,
 * and when the first event and the end arrived.
 */
import { performance } from 'node:perf_hooks';
import { readStream, type Frame } from '../test/support/sse';

export interface LoadClientOptions {
  apiUrls: string[];
  /** The API this client starts on; later attempts go round the list. */
  firstApi: number;
  apiKey: string;
  idempotencyKey: string;
  body: unknown;
  /** When to give up (performance.now() time): the run then counts as lost. */
  deadline: number;
  /** Called once, when the run's first event arrives. */
  onFirstEvent?: () => void;
}

export interface LoadClientResult {
  runId?: string;
  outcome: 'completed' | 'failed' | 'lost';
  /** The `event:error` body, or the refusal, of a failed run. */
  error?: string;
  /** ms from the first POST to the first event, and to `done`. */
  firstEventMs?: number;
  runMs?: number;
  /** Message events in order of their ids; gaps and repeats are counted. */
  events: string[];
  missingEvents: number;
  repeatedEvents: number;
  /** Connections that failed or were cut and were tried again, and why the last one did. */
  reconnects: number;
  lastConnectionError?: string;
}

const RETRY_PAUSE_MS = 250;

export async function loadClient(o: LoadClientOptions): Promise<LoadClientResult> {
  const t0 = performance.now();
  const result: LoadClientResult = { outcome: 'lost', events: [], missingEvents: 0, repeatedEvents: 0, reconnects: 0 };
  let lastId = -1;
  const onFrame = (frame: Frame) => {
    if (frame.event === 'message') {
      const id = Number(frame.id);
      if (id <= lastId) result.repeatedEvents++;
      else {
        result.missingEvents += id - lastId - 1;
        lastId = id;
        result.events.push(frame.data);
      }
      if (result.firstEventMs === undefined) {
        result.firstEventMs = performance.now() - t0;
        o.onFirstEvent?.();
      }
    } else if (frame.event === 'error') {
      result.outcome = 'failed';
      result.error = frame.data;
    } else if (frame.event === 'done' && result.outcome !== 'failed') {
      result.outcome = 'completed';
      result.runMs = performance.now() - t0;
    }
  };

  for (let attempt = 0; performance.now() < o.deadline; attempt++) {
    const apiUrl = o.apiUrls[(o.firstApi + attempt) % o.apiUrls.length]!;
    const auth = { Authorization: `Bearer ${o.apiKey}` };
    try {
      const signal = AbortSignal.timeout(Math.max(1, Math.ceil(o.deadline - performance.now())));
      const res = result.runId
        ? await fetch(`${apiUrl}/v1/agents/runs/${result.runId}/stream`, { headers: { ...auth, 'Last-Event-ID': String(lastId) }, signal })
        : await fetch(`${apiUrl}/v1/agents/heroku`, {
            method: 'POST',
            headers: { ...auth, 'Content-Type': 'application/json', 'Idempotency-Key': o.idempotencyKey },
            body: JSON.stringify(o.body),
            signal,
          });
      result.runId ??= res.headers.get('agent-run-id') ?? undefined;
      const stream = await readStream(res, { onFrame });
      if (stream.json && res.status < 500) {
        // A refusal before the stream (4xx): trying again would not change it.
        result.outcome = 'failed';
        result.error = stream.raw;
      }
      if (result.outcome !== 'lost') return result;
    } catch (err) {
      // Refused, reset or cut: the next attempt goes to the next API.
      result.lastConnectionError =
        err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
    }
    result.reconnects++;
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
  return result;
}
