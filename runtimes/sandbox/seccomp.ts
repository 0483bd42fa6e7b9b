/**
 * The sandbox's seccomp filter: the kernel calls a sandboxed process has no
 * business making, refused before the kernel looks at them. It follows what
 * container runtimes block by default (Docker's default profile for a
 * container without extra capabilities, moby/profiles), and goes further
 * where a tool needs nothing: ptrace and process_vm_* are blocked too.
 *
 * Compiled once per worker, at start, by ./seccomp-compile.py (libseccomp's
 * Python binding: python3-seccomp) into the BPF program that
 * `bwrap --seccomp FD` installs; each call gets it on a pipe.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const SECCOMP_POLICY = {
  /** EPERM: kernel keyrings, BPF, perf, tracing, mounts, namespaces, modules, clocks, swap, reboot... */
  eperm: [
    'acct',
    'add_key',
    'bpf',
    'chroot',
    'clock_adjtime',
    'clock_settime',
    'create_module',
    'delete_module',
    'fanotify_init',
    'finit_module',
    'fsconfig',
    'fsmount',
    'fsopen',
    'fspick',
    'get_kernel_syms',
    'get_mempolicy',
    'init_module',
    'ioperm',
    'iopl',
    'kcmp',
    'kexec_file_load',
    'kexec_load',
    'keyctl',
    'lookup_dcookie',
    'mbind',
    'migrate_pages',
    'mount',
    'mount_setattr',
    'move_mount',
    'move_pages',
    'name_to_handle_at',
    'nfsservctl',
    'open_by_handle_at',
    'open_tree',
    'perf_event_open',
    'pidfd_getfd',
    'pivot_root',
    'process_madvise',
    'process_vm_readv',
    'process_vm_writev',
    'ptrace',
    'query_module',
    'quotactl',
    'quotactl_fd',
    'reboot',
    'request_key',
    'set_mempolicy',
    'setns',
    'settimeofday',
    'swapoff',
    'swapon',
    '_sysctl',
    'syslog',
    'sysfs',
    'umount2',
    'unshare',
    'uselib',
    'userfaultfd',
    'ustat',
    'vhangup',
    'vm86',
    'vm86old',
  ],
  /**
   * ENOSYS, so that programs fall back as they do on older kernels: clone3
   * (its flags sit in memory a filter cannot read; glibc falls back to clone,
   * whose flags it can) and io_uring (libuv falls back to its thread pool).
   */
  enosys: ['clone3', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'],
  /** clone with any namespace flag: NEWUSER, NEWPID, NEWNET, NEWIPC, NEWUTS, NEWCGROUP, NEWNS, NEWTIME. */
  cloneFlags: [0x10000000, 0x20000000, 0x40000000, 0x08000000, 0x04000000, 0x02000000, 0x00020000, 0x00000080],
  /** ioctls that type into or take over a terminal: TIOCSTI, TIOCLINUX. */
  ioctls: [0x5412, 0x541c],
};

/** Debian's interpreter: python3-seccomp installs the binding for it, not for others on PATH. */
const PYTHON = '/usr/bin/python3';
const COMPILER = path.join(__dirname, 'seccomp-compile.py');
const MISSING_BINDING = 3;

/** The BPF program, or an error that says what to install. */
export function compileSeccompFilter(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [COMPILER], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdin.on('error', () => undefined); // reported through the exit status
    child.on('error', (error) => reject(new Error(`cannot compile the seccomp filter: ${PYTHON} cannot be started (${error.message})`)));
    child.on('close', (status) => {
      const program = Buffer.concat(out);
      if (status === 0 && program.length > 0) return resolve(program);
      const why =
        status === MISSING_BINDING
          ? `${PYTHON} has no seccomp module (Debian/Ubuntu: apt-get install python3-seccomp)`
          : err.trim() || `exit status ${status}`;
      reject(new Error(`cannot compile the seccomp filter: ${why}`));
    });
    child.stdin.end(JSON.stringify(SECCOMP_POLICY));
  });
}
