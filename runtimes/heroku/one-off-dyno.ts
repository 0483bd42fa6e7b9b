/**
 * Runs a tool's command in a one-off dyno of the target app and returns its
 * output: the durable equivalent of `heroku run --no-tty --exit-code`.
 *
 * A small state machine, one method per step:
 *   create  POST /apps/{app}/dynos (attached, non-TTY, time_to_live = ttl)
 *   attach  TLS rendezvous to the dyno's attach_url, until the acknowledgement
 *   stream  read the output until the stream ends, our ttl fires, the process
 *           has reported its exit status but the stream lingers, or the call
 *           is cancelled
 *   stop    stop the dyno unless it ended by itself, then answer
 *
 * Timing decisions:
 * - Start-up: from the create request until the rendezvous acknowledgement
 *   (create call, dyno boot, attach) at most STARTUP_TIMEOUT_MS, or a
 *   PlatformError (the dyno, if any, is stopped).
 * - Run: the platform gets `time_to_live: ttlSeconds` and normally ends the
 *   dyno itself. Our own deadline is ttlSeconds + TTL_GRACE_MS after the
 *   acknowledgement (the platform's clock starts at boot, before that, so it
 *   normally fires first; ours is the backstop for a platform or stream that
 *   does not end). On our deadline we drop the stream, stop the dyno and return
 *   the partial output with timedOut true. A stream that ends without the
 *   exit-status marker once ttlSeconds have passed since the create request is
 *   also reported as timedOut (the platform's time_to_live ended it).
 * - Whenever the stream ends without an exit status (killed, ttl, connection
 *   lost), or is still open MARKER_LINGER_MS after the marker (a background
 *   process holds it open; what it wrote until then is kept), the dyno is
 *   stopped, best effort, so nothing is left running.
 * - Cancellation (the signal) stops the dyno, waiting at most
 *   ABORT_STOP_WAIT_MS, and rejects with the signal's reason.
 *
 * Output cap: we keep the first maxOutputBytes bytes (cut on a UTF-8 boundary)
 * and keep reading, discarding the rest, until the process ends, so the exit
 * status is still known; the ttl bounds how long that can take.
 */
import { OutputCollector, withExitStatusMarker } from './output';
import { PlatformClient, PlatformError, type PlatformConfig, type PlatformDyno } from './platform-client';
import { connectRendezvous, parseAttachUrl, type RendezvousTarget } from './rendezvous';

export { PlatformError } from './platform-client';
export type { PlatformConfig } from './platform-client';

export interface OneOffDynoRequest {
  /** target_app_name */
  app: string;
  /** The tool's cmd, run as-is: model arguments travel in `env`, never in here. */
  command: string;
  /** dyno_size, e.g. 'standard-1x' */
  size: string;
  /** Sent as the platform's time_to_live and enforced on our side too (see above). */
  ttlSeconds: number;
  /** TOOL_ARG_<NAME>, TOOL_ARGUMENTS, TOOL_CALL_ID … (keys must match ^\w+$). */
  env: Record<string, string>;
  /** e.g. 64 * 1024 */
  maxOutputBytes: number;
  /** Activity cancellation: stops the dyno and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called when the dyno is created or attached and as output arrives, with what a heartbeat should show. */
  onProgress?: (info: { dynoName: string; bytes: number }) => void;
}

export interface OneOffDynoResult {
  /** Process output (stdout and stderr as the dyno streams them) without the exit-status marker, cut to maxOutputBytes. */
  output: string;
  /** null when unknown (killed, ttl, connection lost, or the command ended the shell itself). */
  exitStatus: number | null;
  /** The ttl ended the command (ours or the platform's); output is what came before. */
  timedOut: boolean;
  truncated: boolean;
  dynoName: string;
}

export const TTL_GRACE_MS = 2_000;
/**
 * Start-up + ttl + grace + stop must end before the tool activity's
 * start-to-close timeout (ttl + TOOL_ACTIVITY_MARGIN_SECONDS of
 * contract/tool-defaults.ts; a unit test checks the sum), so a slow
 * platform gets a readable error and a stopped dyno, not an activity time-out.
 */
export const STARTUP_TIMEOUT_MS = 20_000;
export const MARKER_LINGER_MS = 1_500;
/** How long we wait for a stop call before going on without its answer. */
export const STOP_WAIT_MS = 5_000;
/** The same, when cancelled: the cancellation must be answered promptly. */
export const ABORT_STOP_WAIT_MS = 2_000;

export function runOneOffDyno(platform: PlatformConfig, req: OneOffDynoRequest): Promise<OneOffDynoResult> {
  if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1 || req.ttlSeconds > 86_400) {
    throw new RangeError('ttlSeconds must be an integer from 1 to 86400');
  }
  if (!Number.isInteger(req.maxOutputBytes) || req.maxOutputBytes < 0) {
    throw new RangeError('maxOutputBytes must be a non-negative integer');
  }
  req.signal?.throwIfAborted();
  return new OneOffDyno(new PlatformClient(platform), req).run();
}

/** How the stream step ended. */
type StreamEnd =
  /** The stream ended by itself. */
  | { kind: 'closed' }
  /** Our ttl deadline fired. */
  | { kind: 'deadline' }
  /** The exit status came, but the stream stayed open. */
  | { kind: 'linger' }
  /** Attaching or reading failed. */
  | { kind: 'unreadable'; why: string }
  /** The signal aborted. */
  | { kind: 'cancelled' };

class OneOffDyno {
  private readonly collector: OutputCollector;
  private readonly startedAt = Date.now();

  constructor(
    private readonly client: PlatformClient,
    private readonly req: OneOffDynoRequest,
  ) {
    this.collector = new OutputCollector(req.maxOutputBytes);
  }

  async run(): Promise<OneOffDynoResult> {
    const dyno = await this.create();
    let target: RendezvousTarget;
    try {
      if (!dyno.attach_url) throw new Error('the Platform API returned no attach_url');
      target = parseAttachUrl(dyno.attach_url);
    } catch (err) {
      return this.stop(dyno.name, { kind: 'unreadable', why: (err as Error).message });
    }
    return this.stop(dyno.name, await this.attachAndStream(dyno.name, target));
  }

  /** create: the dyno, within STARTUP_TIMEOUT_MS; one that arrives after a time-out or a cancellation is stopped. */
  private async create(): Promise<PlatformDyno> {
    const { app, signal } = this.req;
    const creating = this.client.createDyno(app, {
      command: withExitStatusMarker(this.req.command),
      attach: true,
      force_no_tty: true,
      env: this.req.env,
      size: this.req.size,
      type: 'run',
      time_to_live: this.req.ttlSeconds,
    });
    // heroku-client cannot cancel a request: a dyno that shows up after we gave up on it is stopped.
    const stopLateDyno = () => void creating.then((d) => this.client.stopDyno(app, d.name)).catch(() => undefined);
    let dyno: PlatformDyno | typeof TIMEOUT;
    try {
      dyno = await raceAbortAndTimeout(creating, signal, STARTUP_TIMEOUT_MS);
    } catch (err) {
      if (signal?.aborted) stopLateDyno();
      throw err;
    }
    if (dyno === TIMEOUT) {
      stopLateDyno();
      throw new PlatformError(
        `Heroku Platform API: could not start a one-off dyno on app "${app}": no answer within ${STARTUP_TIMEOUT_MS / 1000} s`,
        { app },
      );
    }
    this.progress(dyno.name);
    return dyno;
  }

  /** attach, then stream: resolves with how the stream ended; the connection is closed by then. */
  private attachAndStream(dynoName: string, target: RendezvousTarget): Promise<StreamEnd> {
    const { signal } = this.req;
    return new Promise<StreamEnd>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      let ended = false;
      const end = (how: StreamEnd): void => {
        if (ended) return;
        ended = true;
        timers.forEach(clearTimeout);
        signal?.removeEventListener('abort', onAbort);
        conn.destroy();
        resolve(how);
      };
      const onAbort = (): void => end({ kind: 'cancelled' });

      // attach: the acknowledgement must come within what is left of the start-up time.
      timers.push(
        setTimeout(
          () => end({ kind: 'unreadable', why: `the dyno did not attach within ${STARTUP_TIMEOUT_MS / 1000} s` }),
          Math.max(0, this.startedAt + STARTUP_TIMEOUT_MS - Date.now()),
        ),
      );
      const conn = connectRendezvous(target, {
        // stream: from the acknowledgement on, our ttl deadline runs.
        onAttached: () => {
          clearTimeout(timers[0]);
          timers.push(setTimeout(() => end({ kind: 'deadline' }), this.req.ttlSeconds * 1000 + TTL_GRACE_MS));
          this.progress(dynoName);
        },
        onOutput: (chunk) => {
          const finishedBefore = this.collector.exitStatus !== null;
          this.collector.push(chunk);
          this.progress(dynoName);
          // The command has finished: give the stream a moment to end by itself.
          if (!finishedBefore && this.collector.exitStatus !== null) timers.push(setTimeout(() => end({ kind: 'linger' }), MARKER_LINGER_MS));
        },
      });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      void conn.closed.then(({ error }) => {
        if (conn.attached) end({ kind: 'closed' });
        else end({ kind: 'unreadable', why: error ? this.client.redact(error.message) : 'the connection closed before the acknowledgement' });
      });
    });
  }

  /**
   * stop: the dyno is stopped unless the process reported its exit status and
   * the stream ended by itself; then the result, or the error. A cancellation
   * during the stop wins.
   */
  private async stop(dynoName: string, end: StreamEnd): Promise<OneOffDynoResult> {
    const { app, signal } = this.req;
    if (end.kind === 'cancelled') {
      // Give the stop a moment (so a cancelled activity does not leave the dyno
      // running until its ttl), but answer the cancellation promptly.
      await this.stopQuietly(dynoName, undefined, ABORT_STOP_WAIT_MS);
      throw signal?.reason;
    }
    const collected = this.collector.finish();
    const known = collected.exitStatus !== null;
    if (end.kind !== 'closed' || !known) await this.stopQuietly(dynoName, signal);
    signal?.throwIfAborted();
    if (end.kind === 'unreadable') {
      throw new PlatformError(`Heroku one-off dyno: cannot read the output of dyno ${dynoName} on app "${app}": ${end.why}`, { app });
    }
    const timedOut = end.kind === 'deadline' ? !known : end.kind === 'closed' && !known && Date.now() - this.startedAt >= this.req.ttlSeconds * 1000;
    return { output: collected.output, exitStatus: collected.exitStatus, timedOut, truncated: collected.truncated, dynoName };
  }

  /** Stops the dyno, best effort, waiting at most `ms` for the answer (less if `until` aborts). */
  private stopQuietly(dynoName: string, until?: AbortSignal, ms = STOP_WAIT_MS): Promise<void> {
    return settleWithin(
      this.client.stopDyno(this.req.app, dynoName).catch(() => undefined),
      ms,
      until,
    );
  }

  private progress(dynoName: string): void {
    try {
      this.req.onProgress?.({ dynoName, bytes: this.collector.bytes });
    } catch {
      // a failing progress callback must not take the dyno run down with it
    }
  }
}

const TIMEOUT = Symbol('timeout');

/** `p`'s value, TIMEOUT after `ms`, or a rejection with the signal's reason, whichever comes first. */
function raceAbortAndTimeout<T>(p: Promise<T>, signal: AbortSignal | undefined, ms: number): Promise<T | typeof TIMEOUT> {
  return new Promise<T | typeof TIMEOUT>((resolve, reject) => {
    const timer = setTimeout(() => done(() => resolve(TIMEOUT)), ms);
    const onAbort = (): void => done(() => reject(signal?.reason));
    const done = (f: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => done(() => resolve(v)),
      (e) => done(() => reject(e)),
    );
  });
}

/** Resolves when p settles, after ms, or when the signal aborts, whichever comes first. */
function settleWithin(p: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    if (signal?.aborted) return done();
    signal?.addEventListener('abort', done, { once: true });
    p.then(done, done);
  });
}
