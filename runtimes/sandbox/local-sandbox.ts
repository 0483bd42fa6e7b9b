/**
 * The local sandbox: runs one command on the worker host, isolated with
 * bubblewrap (see ./bubblewrap for what it can see), inside its own cgroup,
 * with a clean environment, an output cap and a wall-clock ttl.
 *
 * - Per-call limits (SANDBOX_*, README "Security"): every call gets its own
 *   cgroup (./cgroups, v1 or v2) with memory, pids and CPU limits, and /tmp
 *   is a tmpfs of SANDBOX_TMP_MB. The sandbox joins the group before anything
 *   of it runs: the spawned process is a tiny shell that writes its own pid
 *   into the group's cgroup.procs and only then execs (setpriv and) bwrap, so
 *   every process of the call inherits the group. A call whose limits could
 *   not all be written is never started. Where cgroups cannot be used the
 *   sandbox refuses to run, unless SANDBOX_LIMITS=off (logged) lets calls run
 *   with per-process limits only (LIMITS_OFF_RLIMITS).
 * - At most SANDBOX_MAX_CONCURRENT calls run at once; the others wait for a
 *   slot, and the wait counts against their ttl.
 * - Environment: exactly PATH (the fixed SANDBOX_PATH), HOME, LANG, TMPDIR
 *   and the caller's variables. bwrap itself is started with that environment
 *   (it passes it on), so none of the worker's variables (keys, database URLs)
 *   exist in the sandbox, not even in /proc/1/environ, and no value appears on
 *   a command line.
 * - Per process, set inside by util-linux `prlimit`: CPU time = the ttl, no
 *   core files.
 * - Output: stdout and stderr are read separately (or as one stream with
 *   `mergeStderr`, in write order), each cut to maxOutputBytes on a UTF-8
 *   boundary; the rest is read and dropped, so the exit status stays known.
 * - Time: at the ttl the whole sandbox is killed (SIGKILL to bwrap, whose pid
 *   namespace dies with it, then to whatever is left in the cgroup) and the
 *   result says timedOut. The signal (cancellation) kills it the same way,
 *   and the call rejects with its reason.
 * - Nothing runs unsandboxed by accident: if bwrap, the seccomp filter or the
 *   cgroups are missing, or bwrap cannot set up the sandbox, the call throws
 *   SandboxUnavailableError before the command starts. Mode 'none'
 *   (TOOL_SANDBOX=none) is the explicit opt-out: the command runs as a plain
 *   child process in its own process group, in a work dir on the host
 *   (./work-dir), with the same environment, ttl and per-process limits (the
 *   process count aside, which outside a user namespace would count all the
 *   worker user's processes), but sees the host and the network as the
 *   worker does; a process that leaves the process group (setsid) escapes the
 *   clean-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { SandboxConfig, SandboxLimits } from '../../common/config';
import { AppError } from '../../common/errors';
import { OutputCap, type CappedText } from '../../tool-call/output-cap';
import { bwrapCommand, findExecutable, isExecutableFile, SANDBOX_HOME, SANDBOX_PATH, SECCOMP_FD, SEED_ROOT, sandboxIdentity } from './bubblewrap';
import { openWorkerCgroups, type CallGroup, type WorkerCgroups } from './cgroups';
import { limitNotes, queueTimeoutMessage, type LimitHit } from './limit-notes';
import { compileSeccompFilter } from './seccomp';
import { Slots } from './slots';
import { createWorkDir, removeWorkDir, type WorkDirContents } from './work-dir';

/** Per-process limits used only where there are no per-call cgroup limits (SANDBOX_LIMITS=off, TOOL_SANDBOX=none). */
export const LIMITS_OFF_RLIMITS = {
  addressSpaceBytes: 2 * 1024 ** 3,
  fileSizeBytes: 256 * 1024 ** 2,
  processes: 256,
} as const;

/** How long we wait for the output pipes to close once the command has ended. */
const PIPE_CLOSE_GRACE_MS = 1_000;
/** The join wrapper's exit status when it could not write itself into the call's cgroup. */
const JOIN_FAILED = 125;

/** `copies` must be readable by the sandbox's user (nobody, for a root worker): bwrap binds them by path. */
export interface SandboxRequest extends WorkDirContents {
  /** The program (looked up on SANDBOX_PATH) and its arguments. */
  argv: string[];
  /** Variables added to PATH, HOME, LANG and TMPDIR. */
  env?: Record<string, string>;
  /** Counted from the request: a wait for a slot uses it up too. */
  ttlSeconds: number;
  /** Per stream. */
  maxOutputBytes: number;
  /** stderr goes into the stdout stream, in write order (as a dyno's output does). */
  mergeStderr?: boolean;
  signal?: AbortSignal;
  /** CPUs for a trusted, fixed program (the Go cache warm-up) instead of SANDBOX_CPUS. */
  cpus?: number;
  /** Called when the call has to wait for a slot. */
  onQueued?: () => void;
}

export interface SandboxResult {
  stdout: string;
  stderr: string;
  /** null when the ttl ended the command; 128 + n when signal n killed it. */
  exitStatus: number | null;
  timedOut: boolean;
  truncated: { stdout: boolean; stderr: boolean };
  /** The per-call limits the call ran into. */
  limitsHit: LimitHit[];
  /** How long the call waited for a slot (0: one was free). */
  queuedMs: number;
  /** For the model: the limits it ran into and its wait for a slot, each naming its setting (./limit-notes). */
  notes: string[];
}

export interface SandboxSettings extends SandboxConfig {
  /** bwrap to use instead of the one on workerPath. */
  bwrap?: string;
}

export interface SandboxLog {
  info(message: string): void;
  warn(message: string): void;
}

/** The sandbox could not be set up: the command did not run. `remedy` says what would fix it. */
export class SandboxUnavailableError extends AppError {
  constructor(
    message: string,
    readonly remedy: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The ttl ran out while the call waited for a slot: the command did not run. */
export class SandboxQueueTimeoutError extends AppError {}

const BWRAP_REMEDY = 'The worker needs bubblewrap (bwrap) with user namespaces allowed; or set TOOL_SANDBOX=none to run tools without a sandbox.';
const INSTALL_BWRAP_REMEDY =
  'Install bubblewrap on the worker (Debian/Ubuntu: apt-get install bubblewrap), with user namespaces allowed; or set TOOL_SANDBOX=none to run tools without a sandbox.';
const LIMITS_REMEDY =
  "The worker needs write access to its cgroups (run it as root, or delegate its cgroup to the worker's user); " +
  'or set SANDBOX_LIMITS=off to run sandboxed tools without per-call limits.';
const PACKAGE_REMEDY = 'Install it on the worker (Debian/Ubuntu: apt-get install python3-seccomp util-linux bubblewrap).';

interface Ready {
  kind: 'bubblewrap';
  bwrap: string;
  /** util-linux setpriv, when the worker is root and the sandbox runs as nobody. */
  setpriv?: string;
  seccomp: Buffer;
  /** Absent only with SANDBOX_LIMITS=off. */
  cgroups?: WorkerCgroups;
}
type Setup = Ready | { kind: 'none' } | { kind: 'unavailable'; problem: string; remedy: string };

interface Run {
  stdout: CappedText;
  stderr: CappedText;
  exitStatus: number | null;
  started: boolean;
  /** What the sandbox reported on fd 3 after "up": /tmp's `blocks free blocksize`. */
  tmpStat: string;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: Error;
}

export class LocalSandbox {
  private readonly slots: Slots;

  constructor(
    readonly settings: SandboxSettings,
    private readonly setup: Setup,
    private readonly log: SandboxLog,
  ) {
    this.slots = new Slots(settings.limits.maxConcurrent);
  }

  /** Checks and prepares what the sandbox needs, logging what is missing; calls then refuse with the reason. */
  static async open(settings: SandboxSettings, log: SandboxLog): Promise<LocalSandbox> {
    const setup = await prepare(settings, log);
    if (setup.kind === 'unavailable') log.warn(`the local sandbox cannot run tools: ${setup.problem}. ${setup.remedy}`);
    return new LocalSandbox(settings, setup, log);
  }

  get mode(): SandboxConfig['mode'] {
    return this.settings.mode;
  }

  get limits(): SandboxLimits {
    return this.settings.limits;
  }

  /** The cgroups calls run under (version, the worker's parent group); undefined without per-call limits. */
  get cgroups(): Pick<WorkerCgroups, 'version' | 'parentDirs'> | undefined {
    return this.setup.kind === 'bubblewrap' ? this.setup.cgroups : undefined;
  }

  async run(req: SandboxRequest): Promise<SandboxResult> {
    if (!(req.ttlSeconds > 0)) throw new RangeError('ttlSeconds must be positive');
    if (!Number.isInteger(req.maxOutputBytes) || req.maxOutputBytes < 0) {
      throw new RangeError('maxOutputBytes must be a non-negative integer');
    }
    if (req.argv.length === 0) throw new RangeError('argv must name a program');
    req.signal?.throwIfAborted();
    const setup = this.setup;
    if (setup.kind === 'unavailable') throw new SandboxUnavailableError(setup.problem, setup.remedy);

    const requested = Date.now();
    const queued = !this.slots.tryAcquire();
    if (queued) {
      req.onQueued?.();
      if (!(await this.slots.acquire(req.ttlSeconds * 1000, req.signal))) {
        throw new SandboxQueueTimeoutError(queueTimeoutMessage(req.ttlSeconds, this.limits));
      }
    }
    try {
      const queuedMs = Date.now() - requested;
      const ttlSeconds = req.ttlSeconds - queuedMs / 1000;
      const { cpuBoundAtTtl, ...run } =
        setup.kind === 'none' ? await this.runUnsandboxed(req, ttlSeconds) : await this.runInBubblewrap(req, ttlSeconds, setup);
      return { ...run, queuedMs, notes: limitNotes({ hit: run.limitsHit, cpuBoundAtTtl, queued, queuedMs }, this.limits) };
    } finally {
      this.slots.release();
    }
  }

  /** Removes the worker's parent cgroup (once no call runs). */
  async close(): Promise<void> {
    if (this.setup.kind !== 'bubblewrap') return;
    await this.setup.cgroups?.close().catch((err: Error) => this.log.warn(`the sandbox's cgroups could not be removed: ${err.message}`));
  }

  private async runInBubblewrap(req: SandboxRequest, ttlSeconds: number, setup: Ready) {
    if (this.limits.enforced && !setup.cgroups) throw new SandboxUnavailableError('the per-call limits are not set up', LIMITS_REMEDY);
    let group: CallGroup | undefined;
    try {
      group = setup.cgroups?.createCall({ memoryBytes: this.limits.memoryBytes, pids: this.limits.pids, cpus: req.cpus ?? this.limits.cpus });
    } catch (err) {
      throw new SandboxUnavailableError(`cannot set the call's limits: ${(err as Error).message}`, LIMITS_REMEDY, { cause: err });
    }
    try {
      const layout = bwrapCommand({ tmpBytes: this.limits.tmpBytes, files: req.files, seeds: req.copies, binds: req.writableDirs });
      const inner = [
        '/bin/sh',
        '-c',
        sandboxScript(req.mergeStderr),
        'sh',
        ...layout.seedTargets,
        '--',
        ...prlimit(ttlSeconds, !group, true),
        ...req.argv,
      ];
      const join = group ? joinCommand(group.procsFiles) : [];
      const identity = sandboxIdentity();
      const drop = setup.setpriv && identity ? [setup.setpriv, `--reuid=${identity.uid}`, `--regid=${identity.gid}`, '--clear-groups', '--'] : [];
      const [file = setup.bwrap, ...args] = [...join, ...drop, setup.bwrap, ...layout.args, '--', ...inner];
      const child = spawn(file, args, {
        cwd: '/',
        env: sandboxEnvironment(SANDBOX_HOME, req.env),
        detached: true, // its own process group, killed as one
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', ...layout.fileContents.map(() => 'pipe' as const)],
      });
      feed(child, [setup.seccomp, ...layout.fileContents], SECCOMP_FD);
      const run = await supervise(child, req, ttlSeconds);
      if (run.spawnError) throw new SandboxUnavailableError(`cannot start the sandbox (${file}): ${run.spawnError.message}`, BWRAP_REMEDY);
      if (run.aborted) throw req.signal?.reason;
      if (!run.started && !run.timedOut) {
        const said = run.stderr.text.trim().replace(/\s+/g, ' ');
        if (group && run.exitStatus === JOIN_FAILED) {
          throw new SandboxUnavailableError(`cannot move the call into its cgroup: ${said}`, LIMITS_REMEDY);
        }
        throw new SandboxUnavailableError(
          `bubblewrap could not set up the sandbox: ${said || `bwrap exited with status ${run.exitStatus}`}`,
          BWRAP_REMEDY,
        );
      }
      const usage = group?.usage();
      const limitsHit: LimitHit[] = [];
      if (usage && usage.oomKills > 0) limitsHit.push('memory');
      if (usage?.pidsLimitHit) limitsHit.push('pids');
      if (tmpIsFull(run.tmpStat)) limitsHit.push('tmp');
      return { ...result(run), limitsHit, cpuBoundAtTtl: run.timedOut && Boolean(usage?.cpuThrottled) };
    } finally {
      await group?.remove().catch((err: Error) => this.log.warn(`a sandboxed call's cgroup could not be removed: ${err.message}`));
    }
  }

  private async runUnsandboxed(req: SandboxRequest, ttlSeconds: number) {
    const workDir = await createWorkDir(req);
    try {
      const inner = [sandboxScript(req.mergeStderr), 'sh', '--', ...prlimit(ttlSeconds, true, false), ...req.argv];
      const child = spawn('/bin/sh', ['-c', ...inner], {
        cwd: workDir,
        env: sandboxEnvironment(workDir, req.env),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      });
      const run = await supervise(child, req, ttlSeconds);
      if (run.spawnError) throw run.spawnError;
      if (run.aborted) throw req.signal?.reason;
      return { ...result(run), limitsHit: [], cpuBoundAtTtl: false };
    } finally {
      await removeWorkDir(workDir);
    }
  }
}

async function prepare(settings: SandboxSettings, log: SandboxLog): Promise<Setup> {
  if (settings.mode === 'none') {
    log.warn('TOOL_SANDBOX=none: commands and code of tools run on the worker host WITHOUT a sandbox (no isolation of files, network or processes)');
    return { kind: 'none' };
  }
  const unavailable = (problem: string, remedy: string): Setup => ({ kind: 'unavailable', problem, remedy });
  const bwrap = settings.bwrap ?? findExecutable('bwrap', settings.workerPath);
  if (!bwrap) return unavailable("bubblewrap is not installed: there is no 'bwrap' on the worker's PATH", INSTALL_BWRAP_REMEDY);
  if (!isExecutableFile(bwrap)) return unavailable(`cannot start bubblewrap (${bwrap}): there is no such executable`, BWRAP_REMEDY);
  const setpriv = sandboxIdentity() ? findExecutable('setpriv', SANDBOX_PATH) : undefined;
  if (sandboxIdentity() && !setpriv) {
    return unavailable('setpriv (util-linux) is not installed: a worker running as root needs it to start the sandbox as nobody', PACKAGE_REMEDY);
  }
  let seccomp: Buffer;
  try {
    seccomp = await compileSeccompFilter();
  } catch (err) {
    return unavailable((err as Error).message, PACKAGE_REMEDY);
  }
  const { limits } = settings;
  if (!limits.enforced) {
    log.warn(
      'SANDBOX_LIMITS=off: sandboxed calls run WITHOUT per-call memory, process and CPU limits ' +
        `(only per-process limits, and /tmp of ${limits.tmpBytes / 1024 ** 2} MiB)`,
    );
    return { kind: 'bubblewrap', bwrap, setpriv, seccomp };
  }
  const n = limits.maxConcurrent;
  try {
    const cgroups = openWorkerCgroups({ memoryBytes: limits.memoryBytes * n, pids: limits.pids * n });
    log.info(
      `sandbox: per-call limits on cgroup v${cgroups.version} (${cgroups.parentDirs.join(', ')}): ${limits.memoryBytes / 1024 ** 2} MiB of memory, ` +
        `${limits.pids} processes, ${limits.cpus} CPU, ${limits.tmpBytes / 1024 ** 2} MiB of /tmp; ${n} calls at once`,
    );
    return { kind: 'bubblewrap', bwrap, setpriv, seccomp, cgroups };
  } catch (err) {
    return unavailable(`cannot set per-call limits: ${(err as Error).message}`, LIMITS_REMEDY);
  }
}

/**
 * The start of the spawned command line: a shell that joins the call's
 * cgroups (writes its pid into each cgroup.procs) and then execs the rest,
 * so nothing of the call runs outside them.
 */
export function joinCommand(procsFiles: string[]): string[] {
  const script = `while [ "$1" != -- ]; do echo $$ > "$1" || exit ${JOIN_FAILED}; shift; done; shift; exec "$@"`;
  return ['/bin/sh', '-c', script, 'join', ...procsFiles, '--'];
}

/**
 * Runs inside the sandbox (or the work dir) before the command: says "up" on
 * fd 3 (anything printed before that is a set-up failure), copies the seeds
 * (host dirs under SEED_ROOT) to their places in /tmp, runs the command
 * without fd 3, then reports /tmp's `blocks free blocksize` on fd 3.
 */
function sandboxScript(mergeStderr = false): string {
  return [
    `printf 'up\\n' >&3`,
    `s=0; n=0`,
    `while [ "$1" != -- ]; do`,
    `  [ $s = 0 ] && { mkdir -p "$1" && cp -R "${SEED_ROOT}/$n/." "$1/" || s=126; }`,
    `  n=$((n + 1)); shift`,
    `done; shift`,
    `[ $s = 0 ] && { "$@" 3>&-${mergeStderr ? ' 2>&1' : ''}; s=$?; }`,
    `stat -f -c '%b %f %S' ${SANDBOX_HOME} >&3 2>/dev/null`,
    `exit $s`,
  ].join('\n');
}

function sandboxEnvironment(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: SANDBOX_PATH, HOME: home, TMPDIR: home, LANG: 'C.UTF-8', ...extra };
}

/** `prlimit ... --`: CPU time and core files always; the rest only where no cgroup bounds the call. */
function prlimit(ttlSeconds: number, noCgroup: boolean, inUserNamespace: boolean): string[] {
  const fallback = noCgroup
    ? [
        `--as=${LIMITS_OFF_RLIMITS.addressSpaceBytes}`,
        `--fsize=${LIMITS_OFF_RLIMITS.fileSizeBytes}`,
        ...(inUserNamespace ? [`--nproc=${LIMITS_OFF_RLIMITS.processes}`] : []),
      ]
    : [];
  return ['prlimit', `--cpu=${Math.ceil(ttlSeconds)}`, ...fallback, '--core=0', '--'];
}

/** Writes each content to its pipe (fds from `firstFd`); bwrap reads them while it sets up. */
function feed(child: ChildProcess, contents: (string | Buffer)[], firstFd: number): void {
  contents.forEach((content, i) => {
    const pipe = child.stdio[firstFd + i] as NodeJS.WritableStream & { on(event: 'error', cb: () => void): void };
    pipe.on('error', () => undefined); // bwrap failed before reading it: reported by its exit
    pipe.end(content);
  });
}

/** A tmpfs with no free block left: a write there failed with ENOSPC. */
function tmpIsFull(tmpStat: string): boolean {
  const [blocks, free] = tmpStat.trim().split(' ').map(Number);
  return blocks !== undefined && blocks > 0 && free === 0;
}

function result(run: Run): Omit<SandboxResult, 'limitsHit' | 'queuedMs' | 'notes'> {
  return {
    stdout: run.stdout.text,
    stderr: run.stderr.text,
    exitStatus: run.timedOut ? null : run.exitStatus,
    timedOut: run.timedOut,
    truncated: { stdout: run.stdout.truncated, stderr: run.stderr.truncated },
  };
}

/** Collects the output and ends the process group at the ttl, on abort, and when the command ends. */
function supervise(child: ChildProcess, req: SandboxRequest, ttlSeconds: number): Promise<Run> {
  const stdout = new OutputCap(req.maxOutputBytes);
  const stderr = new OutputCap(req.maxOutputBytes);
  child.stdout?.on('data', (b: Buffer) => stdout.push(b));
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  let status = '';
  child.stdio[3]?.on('data', (b: Buffer) => (status += b.toString()));

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
    }, ttlSeconds * 1000);
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
      const [up, tmpStat = ''] = status.split('\n');
      resolve({ stdout: stdout.finish(), stderr: stderr.finish(), exitStatus, started: up === 'up', tmpStat, timedOut, aborted, spawnError });
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
