/**
 * Runs a tool's command in a one-off dyno of the target app and returns its
 * output: the durable equivalent of `heroku run --no-tty --exit-code`.
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
 *
 * Output cap: we keep the first maxOutputBytes bytes (cut on a UTF-8 boundary)
 * and keep reading, discarding the rest, until the process ends, so the exit
 * status is still known; the ttl bounds how long that can take.
 */
import { OutputCollector, withExitStatusMarker } from './output';
import { PlatformClient, PlatformError, type PlatformConfig, type PlatformDyno } from './platform-client';
import { connectRendezvous, parseAttachUrl, type RendezvousConnection, type RendezvousTarget } from './rendezvous';

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
  /** Called at least every PROGRESS_INTERVAL_MS while running, so the caller can heartbeat. */
  onProgress?: (info: { dynoName?: string; bytes: number }) => void;
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
 * start-to-close timeout (ttl + 30 s, workflows/agent-run.ts), so a slow
 * platform gets a readable error and a stopped dyno, not an activity time-out.
 */
export const STARTUP_TIMEOUT_MS = 20_000;
export const PROGRESS_INTERVAL_MS = 2_000;
export const MARKER_LINGER_MS = 1_500;
/** How long we wait for a stop call before going on without its answer. */
export const STOP_WAIT_MS = 5_000;
/** The same, when cancelled: the cancellation must be answered promptly. */
export const ABORT_STOP_WAIT_MS = 2_000;

export async function runOneOffDyno(platform: PlatformConfig, req: OneOffDynoRequest): Promise<OneOffDynoResult> {
  const { app, signal } = req;
  if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1 || req.ttlSeconds > 86_400) {
    throw new RangeError('ttlSeconds must be an integer from 1 to 86400');
  }
  if (!Number.isInteger(req.maxOutputBytes) || req.maxOutputBytes < 0) {
    throw new RangeError('maxOutputBytes must be a non-negative integer');
  }
  signal?.throwIfAborted();

  const client = new PlatformClient(platform);
  const collector = new OutputCollector(req.maxOutputBytes);
  const startedAt = Date.now();
  let dynoName: string | undefined;

  const progress = (): void => {
    try {
      req.onProgress?.({ dynoName, bytes: collector.bytes });
    } catch {
      // a failing progress callback must not take the dyno run down with it
    }
  };
  const progressTimer = setInterval(progress, PROGRESS_INTERVAL_MS);

  /** Stops the dyno, best effort, waiting at most `ms` for the answer (less if `until` aborts). */
  const stopQuietly = (name: string, until?: AbortSignal, ms = STOP_WAIT_MS): Promise<void> =>
    settleWithin(client.stopDyno(app, name).catch(() => undefined), ms, until);

  try {
    // ---- 1. create the dyno
    const creating = client.createDyno(app, {
      command: withExitStatusMarker(req.command),
      attach: true,
      force_no_tty: true,
      env: req.env,
      size: req.size,
      type: 'run',
      time_to_live: req.ttlSeconds,
    });
    let dyno: PlatformDyno;
    try {
      dyno = await raceAbortAndTimeout(creating, signal, STARTUP_TIMEOUT_MS);
    } catch (err) {
      if (err === TIMEOUT || signal?.aborted) {
        // heroku-client cannot cancel a request: stop the dyno if it shows up after all.
        creating.then((d) => client.stopDyno(app, d.name)).catch(() => undefined);
      }
      if (err === TIMEOUT) {
        throw new PlatformError(
          `Heroku Platform API: could not start a one-off dyno on app "${app}": no answer within ${STARTUP_TIMEOUT_MS / 1000} s`,
          { app, retryable: true },
        );
      }
      throw err;
    }
    dynoName = dyno.name;
    progress();

    let target: RendezvousTarget;
    try {
      if (!dyno.attach_url) throw new Error('the Platform API returned no attach_url');
      target = parseAttachUrl(dyno.attach_url);
    } catch (err) {
      await stopQuietly(dyno.name, signal);
      throw new PlatformError(
        `Heroku one-off dyno: cannot read the output of dyno ${dyno.name} on app "${app}": ${(err as Error).message}`,
        { app },
      );
    }

    // ---- 2. attach and read until the process ends, the ttl fires or we are cancelled
    const name = dyno.name;
    return await new Promise<OneOffDynoResult>((resolve, reject) => {
      let settled = false;
      let runTimer: NodeJS.Timeout | undefined;
      let lingerTimer: NodeJS.Timeout | undefined;
      const startupTimer = setTimeout(
        () => fail(`the dyno did not attach within ${STARTUP_TIMEOUT_MS / 1000} s`),
        Math.max(0, startedAt + STARTUP_TIMEOUT_MS - Date.now()),
      );

      const conn: RendezvousConnection = connectRendezvous(target, {
        onAttached: () => {
          clearTimeout(startupTimer);
          runTimer = setTimeout(() => finish('deadline'), req.ttlSeconds * 1000 + TTL_GRACE_MS);
          progress();
        },
        onOutput: (chunk) => {
          collector.push(chunk);
          // The command has finished: give the stream a moment to end by itself.
          if (collector.exitStatus !== null && !lingerTimer) {
            lingerTimer = setTimeout(() => finish('linger'), MARKER_LINGER_MS);
          }
        },
      });

      const cleanup = (): void => {
        settled = true;
        clearTimeout(startupTimer);
        clearTimeout(runTimer);
        clearTimeout(lingerTimer);
        signal?.removeEventListener('abort', onAbort);
        conn.destroy();
      };

      /**
       * Ends with a result. `closed`: the stream ended by itself; `deadline`: our
       * ttl fired; `linger`: the marker came but the stream stayed open. The
       * dyno is stopped unless the process reported its exit status and the
       * stream ended. A cancellation during the stop wins.
       */
      const finish = (how: 'closed' | 'deadline' | 'linger'): void => {
        if (settled) return;
        cleanup();
        const collected = collector.finish();
        const known = collected.exitStatus !== null;
        const timedOut =
          how === 'deadline' ? !known : how === 'closed' && !known && Date.now() - startedAt >= req.ttlSeconds * 1000;
        const result: OneOffDynoResult = {
          output: collected.output,
          exitStatus: collected.exitStatus,
          timedOut,
          truncated: collected.truncated,
          dynoName: name,
        };
        const stop = how !== 'closed' || !known;
        (stop ? stopQuietly(name, signal) : Promise.resolve()).then(() => {
          if (signal?.aborted) reject(signal.reason);
          else resolve(result);
        });
      };

      const fail = (why: string, retryable = true): void => {
        if (settled) return;
        cleanup();
        stopQuietly(name, signal).then(() => {
          if (signal?.aborted) reject(signal.reason);
          else
            reject(
              new PlatformError(`Heroku one-off dyno: cannot read the output of dyno ${name} on app "${app}": ${why}`, {
                app,
                retryable,
              }),
            );
        });
      };

      function onAbort(): void {
        if (settled) return;
        cleanup();
        // Give the stop a moment (so a cancelled activity does not leave the dyno
        // running until its ttl), but answer the cancellation promptly.
        stopQuietly(name, undefined, ABORT_STOP_WAIT_MS).then(() => reject(signal?.reason));
      }

      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      conn.closed.then(({ error }) => {
        if (settled) return;
        if (conn.attached) finish('closed');
        else if (!error) fail('the connection closed before the acknowledgement');
        else fail(client.redact(error.message), !isCertificateError(error));
      });
    });
  } finally {
    clearInterval(progressTimer);
  }
}

const TIMEOUT = Symbol('timeout');

/** TLS verification failures do not go away by trying again. */
function isCertificateError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
}

function raceAbortAndTimeout<T>(p: Promise<T>, signal: AbortSignal | undefined, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(() => reject(TIMEOUT)), ms);
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
