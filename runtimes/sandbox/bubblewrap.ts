/**
 * The bubblewrap (`bwrap`) command line of the local sandbox: what the
 * sandboxed process can see and do.
 *
 * - Namespaces: new user, pid, network (loopback only: no network access),
 *   IPC, UTS and (where the kernel allows) cgroup namespaces; a new session (no
 *   TIOCSTI into the worker's terminal); killed with bwrap (--die-with-parent).
 *   As the process is pid 2 under bwrap's own pid 1, ending bwrap, or the
 *   command, kills every process left in the sandbox.
 * - Filesystem: /usr and /etc read-only, the /bin, /lib... of the host as the
 *   same symlinks or read-only dirs, a private /proc, a minimal /dev, and the
 *   only writable places: the call's work dir at /tmp (also HOME and the
 *   working dir) and a 64 MiB /dev/shm. Nothing else: no /root, /home, /var,
 *   /run, /sys, no worker's project dir (masked with an empty tmpfs
 *   should it lie under /usr or /etc). Runtimes installed elsewhere (pyenv,
 *   nvm under a home dir) are not visible: the sandbox uses the system's.
 * - Identity: when the worker runs as root, bwrap is started as `nobody`
 *   (65534), so the command has no privileges on the host and RLIMIT_NPROC
 *   applies to it (the kernel never applies it to uid 0).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where the work dir appears inside the sandbox. */
export const SANDBOX_HOME = '/tmp';

/** The uid/gid the sandbox runs as when the worker is root. */
export const SANDBOX_UNPRIVILEGED_ID = 65534;

/** Size of the writable /dev/shm (POSIX shared memory, semaphores). */
const SHM_BYTES = 64 * 1024 * 1024;
const READ_ONLY_DIRS = ['/usr', '/etc'];
/** Top-level entries that are symlinks into /usr on merged-/usr systems, real dirs elsewhere. */
const TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** The worker's own code: never visible to a tool, even where it lives under /usr. */
const PROJECT_ROOT = path.resolve(__dirname, '../..');

/** The uid and gid to start bwrap with, or undefined to keep the worker's. */
export function sandboxIdentity(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? { uid: SANDBOX_UNPRIVILEGED_ID, gid: SANDBOX_UNPRIVILEGED_ID } : undefined;
}

/** bwrap's options, up to (not including) `--` and the command. */
export function bwrapArguments(workDir: string): string[] {
  const args = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    'sandbox',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
  ];
  for (const dir of READ_ONLY_DIRS) args.push('--ro-bind', dir, dir);
  for (const entry of TOP_LEVEL) {
    const stat = fs.lstatSync(entry, { throwIfNoEntry: false });
    if (stat?.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(entry), entry);
    else if (stat?.isDirectory()) args.push('--ro-bind', entry, entry);
  }
  for (const hidden of new Set([PROJECT_ROOT, process.cwd()])) {
    if (READ_ONLY_DIRS.some((dir) => hidden.startsWith(`${dir}/`))) args.push('--tmpfs', hidden);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--size', String(SHM_BYTES), '--tmpfs', '/dev/shm');
  args.push('--bind', workDir, SANDBOX_HOME, '--chdir', SANDBOX_HOME);
  // bwrap's root and /dev are tmpfs: read-only, so the only writable places are the work dir and /dev/shm.
  args.push('--remount-ro', '/dev', '--remount-ro', '/');
  return args;
}

const STANDARD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * PATH inside the sandbox: the worker's PATH entries the sandbox can see
 * (under /usr, e.g. /usr/local/go/bin), then the standard directories.
 */
export function sandboxPath(workerPath: string | undefined): string {
  const visible = (workerPath ?? '').split(':').filter((dir) => dir.startsWith('/usr/'));
  return [...new Set([...visible, ...STANDARD_PATH])].join(':');
}

/** The absolute path of `name` on `searchPath`, like `command -v`. */
export function findExecutable(name: string, searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? '').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
