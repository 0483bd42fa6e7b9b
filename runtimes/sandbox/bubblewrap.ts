/**
 * The bubblewrap (`bwrap`) command line of the local sandbox: what the
 * sandboxed process can see and do.
 *
 * - Namespaces: new user, pid, network (loopback only: no network access),
 *   IPC, UTS and (where the kernel allows) cgroup namespaces; a new session (no
 *   TIOCSTI into the worker's terminal); killed with bwrap (--die-with-parent).
 *   As the process is pid 2 under bwrap's own pid 1, ending bwrap, or the
 *   command, kills every process left in the sandbox.
 * - Kernel surface: no further user namespaces (--disable-userns: inside,
 *   `unshare -U` fails), and the seccomp filter of ./seccomp on fd SECCOMP_FD.
 * - Filesystem: /usr read-only, the /bin, /lib... of the host as the same
 *   symlinks or read-only dirs, a private /proc, a minimal /dev, an /etc with
 *   only what tools read (ETC_FILES, ETC_FROM_HOST), and the only writable
 *   places: /tmp, a size-limited tmpfs that is also HOME and the working dir,
 *   and a 64 MiB /dev/shm. Nothing of the host's disk is writable, and
 *   nothing else is there: no /root, /home, /var, /run, /sys, no worker's
 *   project dir (masked with an empty tmpfs should it lie under /usr).
 *   Runtimes installed elsewhere (pyenv, nvm under a home dir) are not
 *   visible: the sandbox uses the system's.
 * - Files: the call's files are copied by bwrap from pipes (--file) into /tmp;
 *   host dirs to start from (a warm build cache) are bound read-only under
 *   SEED_ROOT for the sandbox to copy into /tmp itself.
 * - Identity: when the worker runs as root, bwrap is started as `nobody`
 *   (65534), so the command has no privileges on the host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** /tmp inside the sandbox: HOME, TMPDIR and the working dir. */
export const SANDBOX_HOME = '/tmp';

/** The uid/gid the sandbox runs as when the worker is root. */
export const SANDBOX_UNPRIVILEGED_ID = 65534;

/**
 * PATH inside the sandbox: the system's directories, whatever the worker's
 * PATH is (`npm start` puts npm's own helpers first). /usr/local/go/bin is
 * where Go's official release installs.
 */
export const SANDBOX_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/local/go/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');

/** The fd bwrap reads the seccomp program from. */
export const SECCOMP_FD = 4;
/** Where host dirs to copy from appear: SEED_ROOT/0, SEED_ROOT/1, ... */
export const SEED_ROOT = '/run/seed';

/** Size of the writable /dev/shm (POSIX shared memory, semaphores). */
const SHM_BYTES = 64 * 1024 * 1024;
const FIRST_FILE_FD = SECCOMP_FD + 1;
/** Top-level entries that are symlinks into /usr on merged-/usr systems, real dirs elsewhere. */
const TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** The worker's own code: never visible to a tool, even where it lives under /usr. */
const PROJECT_ROOT = path.resolve(__dirname, '../..');
/**
 * Host files of /etc that tools read, all public: the dynamic linker's cache,
 * time zone, service and protocol names, the /etc/alternatives symlinks
 * (awk, which, cc, ...), CA certificates and OpenSSL's configuration (Node
 * reads it at start). Not the host's accounts, hostname, resolver or secrets.
 */
const ETC_FROM_HOST = ['ld.so.cache', 'localtime', 'services', 'protocols', 'alternatives', 'ssl/certs', 'ssl/openssl.cnf'];

/** The uid and gid to start bwrap with, or undefined to keep the worker's. */
export function sandboxIdentity(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? { uid: SANDBOX_UNPRIVILEGED_ID, gid: SANDBOX_UNPRIVILEGED_ID } : undefined;
}

/** /etc files written for the sandbox: its own user and group only, and local name lookup. */
function etcFiles(): Record<string, string> {
  const uid = sandboxIdentity()?.uid ?? process.getuid?.() ?? SANDBOX_UNPRIVILEGED_ID;
  const gid = sandboxIdentity()?.gid ?? process.getgid?.() ?? SANDBOX_UNPRIVILEGED_ID;
  const user = uid === SANDBOX_UNPRIVILEGED_ID ? 'nobody' : 'sandbox';
  const group = gid === SANDBOX_UNPRIVILEGED_ID ? 'nogroup' : 'sandbox';
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\n${user}:x:${uid}:${gid}:${user}:${SANDBOX_HOME}:/usr/sbin/nologin\n`,
    group: `root:x:0:\n${group}:x:${gid}:\n`,
    'nsswitch.conf': 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nservices: files\nprotocols: files\n',
    hosts: '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  };
}

/** What a sandbox starts with. Paths are relative to /tmp. */
export interface SandboxLayout {
  /** Size of the /tmp tmpfs. */
  tmpBytes: number;
  /** Files to create (path → content). */
  files?: Record<string, string>;
  /** Host dirs the sandbox copies in before the command (path → host dir). */
  seeds?: Record<string, string>;
  /** Host dirs bound read-write (path → host dir): only for trusted, fixed programs. */
  binds?: Record<string, string>;
}

export interface BwrapCommand {
  /** bwrap's options, up to (not including) `--` and the command. */
  args: string[];
  /** What to write to fds FIRST_FILE_FD, FIRST_FILE_FD + 1, ... (bwrap copies each into its file). */
  fileContents: string[];
  /** Where each seed is to be copied (absolute paths inside), in the order of SEED_ROOT/<n>. */
  seedTargets: string[];
}

export function bwrapCommand(layout: SandboxLayout): BwrapCommand {
  const fileContents: string[] = [];
  const fileFd = (content: string): string => String(FIRST_FILE_FD + fileContents.push(content) - 1);
  const args = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--disable-userns',
    '--hostname',
    'sandbox',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  for (const entry of TOP_LEVEL) {
    const stat = fs.lstatSync(entry, { throwIfNoEntry: false });
    if (stat?.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(entry), entry);
    else if (stat?.isDirectory()) args.push('--ro-bind', entry, entry);
  }
  for (const hidden of new Set([PROJECT_ROOT, process.cwd()])) {
    if (hidden.startsWith('/usr/')) args.push('--tmpfs', hidden);
  }
  args.push('--dir', '/etc');
  for (const [name, content] of Object.entries(etcFiles())) args.push('--perms', '0444', '--file', fileFd(content), `/etc/${name}`);
  for (const name of ETC_FROM_HOST) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  args.push('--proc', '/proc', '--dev', '/dev', '--size', String(SHM_BYTES), '--tmpfs', '/dev/shm');
  args.push('--size', String(layout.tmpBytes), '--perms', '1777', '--tmpfs', SANDBOX_HOME);
  for (const [name, content] of Object.entries(layout.files ?? {})) args.push('--perms', '0644', '--file', fileFd(content), underTmp(name));
  const seedTargets: string[] = [];
  for (const [name, hostDir] of Object.entries(layout.seeds ?? {})) {
    args.push('--ro-bind', hostDir, `${SEED_ROOT}/${seedTargets.length}`);
    seedTargets.push(underTmp(name));
  }
  for (const [name, hostDir] of Object.entries(layout.binds ?? {})) args.push('--bind', hostDir, underTmp(name));
  args.push('--chdir', SANDBOX_HOME, '--seccomp', String(SECCOMP_FD));
  // bwrap's root and /dev are tmpfs: read-only, so the only writable places are /tmp and /dev/shm.
  args.push('--remount-ro', '/dev', '--remount-ro', '/');
  return { args, fileContents, seedTargets };
}

/** The absolute path inside the sandbox of `name`, which must be a relative path inside /tmp. */
export function underTmp(name: string): string {
  const target = path.posix.resolve(SANDBOX_HOME, name);
  if (!target.startsWith(`${SANDBOX_HOME}/`)) throw new RangeError(`'${name}' is not a relative path inside ${SANDBOX_HOME}`);
  return target;
}

/** The absolute path of `name` on `searchPath`, like `command -v`. */
export function findExecutable(name: string, searchPath: string | undefined): string | undefined {
  return (searchPath ?? '')
    .split(':')
    .filter(Boolean)
    .map((dir) => path.join(dir, name))
    .find(isExecutableFile);
}

export function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
