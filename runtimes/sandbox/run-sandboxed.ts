/**
 * The local sandbox: runs one command on the worker host, isolated with
 * bubblewrap (see ./bubblewrap for what it can see), with a clean
 * environment, resource limits, an output cap and a wall-clock ttl.
 *
 * - Environment: exactly PATH, HOME, LANG, TMPDIR and the caller's variables.
 *   bwrap itself is started with that environment (it passes it on), so none
 *   of the worker's variables (keys, database URLs) exist in the sandbox, not
 *   even in /proc/1/environ, and no value appears on a command line.
 * - Limits (per process, set inside the sandbox by util-linux `prlimit`):
 *   CPU time = the ttl, address space LIMITS.addressSpaceBytes (Node reserves
 *   ~0.7 GiB of address space at start-up, so it can still allocate ~1.2 GiB;
 *   Go's compiler fits easily; WebAssembly in Node, which reserves ~10 GiB,
 *   does not), file size LIMITS.fileSizeBytes (a bound per file, not on the
 *   work dir's total), no core files, and LIMITS.processes tasks (threads
 *   count) in the sandbox's user namespace.
 * - Output: stdout and stderr are read separately (or as one stream with
 *   `mergeStderr`, in write order), each cut to maxOutputBytes on a UTF-8
 *   boundary; the rest is read and dropped, so the exit status stays known.
 * - Time: at ttlSeconds the whole sandbox is killed (SIGKILL to bwrap, whose
 *   pid namespace dies with it) and the result says timedOut. The signal
 *   (cancellation) kills it the same way, and the call rejects with its reason.
 * - Nothing runs unsandboxed by accident: if bwrap is missing or cannot set up
 *   the sandbox (e.g. user namespaces are not allowed) the call throws
 *   SandboxUnavailableError before the command starts. Mode 'none'
 *   (TOOL_SANDBOX=none) is the explicit opt-out: the command runs as a plain
 *   child process in its own process group, with the same environment (PATH
 *   being the worker's), limits (except the process count, which outside a
 *   user namespace would count all the worker user's processes) and ttl, in
 *   the work dir, but sees the host and the network as the worker does; a
 *   process that leaves the process group (setsid) escapes the clean-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { SandboxMode } from '../../common/config';
import { AppError } from '../../common/errors';
import { OutputCap, type CappedText } from '../../tool-call/output-cap';
import { bwrapArguments, findExecutable, SANDBOX_HOME, sandboxIdentity, sandboxPath } from './bubblewrap';
import { createWorkDir, removeWorkDir, type WorkDirContents } from './work-dir';

export type { SandboxMode };

export const LIMITS = {
  addressSpaceBytes: 2 * 1024 ** 3,
  fileSizeBytes: 256 * 1024 ** 2,
  processes: 256,
} as const;

/** How long we wait for the output pipes to close once the command has ended. */
const PIPE_CLOSE_GRACE_MS = 1_000;

export interface SandboxRequest extends WorkDirContents {
  /** The program (looked up on the sandbox's PATH) and its arguments. */
  argv: string[];
  /** Variables added to PATH, HOME, LANG and TMPDIR. */
  env?: Record<string, string>;
  ttlSeconds: number;
  /** Per stream. */
  maxOutputBytes: number;
  /** stderr goes into the stdout stream, in write order (as a dyno's output does). */
  mergeStderr?: boolean;
  signal?: AbortSignal;
  /** Called with the work dir's host path after a run that was not cancelled, before the dir is removed. */
  collect?: (workDir: string) => Promise<void>;
}

export interface SandboxResult {
  stdout: string;
  stderr: string;
  /** null when the ttl ended the command; 128 + n when signal n killed it. */
  exitStatus: number | null;
  timedOut: boolean;
  truncated: { stdout: boolean; stderr: boolean };
}

export interface SandboxSettings {
  mode: SandboxMode;
  /** The worker's PATH: where bwrap is looked up, and the command's PATH in mode 'none'. */
  workerPath?: string;
  /** bwrap to use instead of the one on workerPath. */
  bwrap?: string;
}

/** The sandbox could not be set up: the command did not run. */
export class SandboxUnavailableError extends AppError {}

export async function runSandboxed(req: SandboxRequest, settings: SandboxSettings): Promise<SandboxResult> {
  if (!(req.ttlSeconds > 0)) throw new RangeError('ttlSeconds must be positive');
  if (!Number.isInteger(req.maxOutputBytes) || req.maxOutputBytes < 0) {
    throw new RangeError('maxOutputBytes must be a non-negative integer');
  }
  if (req.argv.length === 0) throw new RangeError('argv must name a program');
  req.signal?.throwIfAborted();

  const sandboxed = settings.mode === 'bubblewrap';
  const bwrap = sandboxed ? (settings.bwrap ?? findExecutable('bwrap', settings.workerPath)) : undefined;
  if (sandboxed && !bwrap) {
    throw new SandboxUnavailableError("bubblewrap is not installed: there is no 'bwrap' on the worker's PATH");
  }
  const identity = sandboxed ? sandboxIdentity() : undefined;
  const workDir = await createWorkDir(req, identity);
  try {
    const home = sandboxed ? SANDBOX_HOME : workDir;
    const env = {
      PATH: sandboxed ? sandboxPath(settings.workerPath) : (settings.workerPath ?? ''),
      HOME: home,
      TMPDIR: home,
      LANG: 'C.UTF-8',
      ...req.env,
    };
    const inner = ['/bin/sh', '-c', wrapperScript(req.mergeStderr), 'sh', ...limitArguments(req.ttlSeconds, sandboxed), ...req.argv];
    const [file, args] = bwrap ? [bwrap, [...bwrapArguments(workDir), '--', ...inner]] : ['/bin/sh', inner.slice(1)];
    const child = spawn(file, args, {
      cwd: workDir,
      env,
      ...identity,
      detached: true, // its own process group, killed as one
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const run = await supervise(child, req);
    if (run.spawnError) {
      if (sandboxed) throw new SandboxUnavailableError(`cannot start bubblewrap (${bwrap}): ${run.spawnError.message}`, { cause: run.spawnError });
      throw run.spawnError;
    }
    if (run.aborted) throw req.signal?.reason;
    if (sandboxed && !run.started && !run.timedOut) {
      const said = run.stderr.text.trim().replace(/\s+/g, ' ');
      throw new SandboxUnavailableError(`bubblewrap could not set up the sandbox: ${said || `bwrap exited with status ${run.exitStatus}`}`);
    }
    await req.collect?.(workDir);
    return {
      stdout: run.stdout.text,
      stderr: run.stderr.text,
      exitStatus: run.timedOut ? null : run.exitStatus,
      timedOut: run.timedOut,
      truncated: { stdout: run.stdout.truncated, stderr: run.stderr.truncated },
    };
  } finally {
    await removeWorkDir(workDir);
  }
}

/**
 * Runs inside the sandbox before the command: tells us on fd 3 that the
 * sandbox is up (anything bwrap prints before that is a set-up failure), closes
 * fd 3, and execs `prlimit ... -- argv`.
 */
function wrapperScript(mergeStderr = false): string {
  return `printf . >&3 && exec 3>&- && ${mergeStderr ? 'exec 2>&1 && ' : ''}exec "$@"`;
}

function limitArguments(ttlSeconds: number, sandboxed: boolean): string[] {
  return [
    'prlimit',
    `--cpu=${Math.ceil(ttlSeconds)}`,
    `--as=${LIMITS.addressSpaceBytes}`,
    `--fsize=${LIMITS.fileSizeBytes}`,
    '--core=0',
    ...(sandboxed ? [`--nproc=${LIMITS.processes}`] : []),
    '--',
  ];
}

interface Supervised {
  stdout: CappedText;
  stderr: CappedText;
  exitStatus: number | null;
  started: boolean;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: Error;
}

/** Collects the output and ends the process group at the ttl, on abort, and when the command ends. */
function supervise(child: ChildProcess, req: SandboxRequest): Promise<Supervised> {
  const stdout = new OutputCap(req.maxOutputBytes);
  const stderr = new OutputCap(req.maxOutputBytes);
  child.stdout?.on('data', (b: Buffer) => stdout.push(b));
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  let started = false;
  child.stdio[3]?.on('data', () => (started = true));

  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let exitStatus: number | null = null;
    let graceTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const ttlTimer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, req.ttlSeconds * 1000);
    const onAbort = (): void => {
      aborted = true;
      killGroup();
    };
    req.signal?.addEventListener('abort', onAbort, { once: true });

    let settled = false;
    const settle = (spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(ttlTimer);
      clearTimeout(graceTimer);
      req.signal?.removeEventListener('abort', onAbort);
      for (const stream of child.stdio) stream?.destroy();
      resolve({ stdout: stdout.finish(), stderr: stderr.finish(), exitStatus, started, timedOut, aborted, spawnError });
    };
    child.once('error', (err) => settle(err));
    child.once('exit', (code, signal) => {
      exitStatus = code ?? (signal ? 128 + osConstants.signals[signal] : null);
      // Leftover background processes of the command go with it (mode 'none';
      // in the sandbox the pid namespace is already gone).
      killGroup();
      graceTimer = setTimeout(() => settle(), PIPE_CLOSE_GRACE_MS);
    });
    child.once('close', () => settle());
  });
}
