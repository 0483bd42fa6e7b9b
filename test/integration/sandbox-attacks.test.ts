/**
 * Attacks on the local sandbox's per-call limits and kernel surface, the way
 * a model steered by prompt injection would make them, with real bubblewrap
 * and real cgroups: each attack runs next to an ordinary call (a bystander
 * that allocates memory, writes to /tmp and starts processes) that must come
 * back unharmed, and another call must work after it, so the worker still
 * answers. Needs root (per-call cgroups), bubblewrap, util-linux and
 * python3-seccomp. The fork bomb runs only once the sandbox has shown that
 * its calls run in cgroups with a pids limit, and under an RLIMIT_NPROC of
 * its own as a second bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeParams } from '../../contract/run-contract';
import { CommandRuntime } from '../../runtimes/command-runtime';
import { SANDBOX_PATH } from '../../runtimes/sandbox/bubblewrap';
import { SandboxQueueTimeoutError, type LocalSandbox, type SandboxRequest, type SandboxResult } from '../../runtimes/sandbox/local-sandbox';
import { openSandbox, sandboxSettings } from '../support/sandbox';

const ROOT = path.resolve(__dirname, '../..');
const MIB = 1024 * 1024;
const AS_ROOT = process.getuid?.() === 0;
const NEEDS_ROOT = !AS_ROOT && 'per-call cgroups need a worker running as root';

const call = (sandbox: LocalSandbox, req: Partial<SandboxRequest> & { argv: string[] }) =>
  sandbox.run({ ttlSeconds: 30, maxOutputBytes: 16 * 1024, mergeStderr: true, ...req });
const sh = (sandbox: LocalSandbox, script: string, req: Partial<SandboxRequest> = {}) => call(sandbox, { argv: ['sh', '-c', script], ...req });

/** An ordinary call: 200 MiB of memory, 10 MiB in /tmp, three child processes. */
const BYSTANDER = `import subprocess
x = bytearray(200 << 20)
x[::4096] = b"\\1" * (200 << 8)
open("/tmp/f", "wb").write(b"\\0" * (10 << 20))
outs = [subprocess.run(["echo", str(i)], capture_output=True, text=True).stdout.strip() for i in range(3)]
print("bystander ok", len(x) >> 20, outs)`;
const BYSTANDER_RESULT: SandboxResult = {
  stdout: "bystander ok 200 ['0', '1', '2']\n",
  stderr: '',
  exitStatus: 0,
  timedOut: false,
  truncated: { stdout: false, stderr: false },
  limitsHit: [],
  queuedMs: 0,
  notes: [],
};

let sandbox: LocalSandbox;
before(async () => {
  if (!AS_ROOT) return;
  sandbox = await openSandbox(sandboxSettings('bubblewrap', { SANDBOX_MAX_CONCURRENT: '2' }));
  assert.ok(sandbox.cgroups, 'calls run in per-call cgroups: the attacks below run only inside them');
});
after(() => sandbox?.close());

/** Runs the attack while a bystander call runs next to it, then one more call; both must be unharmed. */
async function attack(req: Partial<SandboxRequest> & { argv: string[] }): Promise<SandboxResult> {
  const attacked = call(sandbox, req);
  await sleep(300); // the bystander runs while the attack is under way
  const bystander = await call(sandbox, { argv: ['python3', '-c', BYSTANDER] });
  const result = await attacked;
  assert.deepEqual(bystander, BYSTANDER_RESULT, 'the concurrent call is unharmed');
  assert.deepEqual(await call(sandbox, { argv: ['python3', '-c', BYSTANDER] }), BYSTANDER_RESULT, 'the worker still runs calls');
  return result;
}

function processesWith(marker: string): string {
  return spawnSync('pgrep', ['-af', marker], { encoding: 'utf8' }).stdout.trim();
}

describe('attacks on the per-call limits', { skip: NEEDS_ROOT }, () => {
  test('every call runs in a cgroup of its own with the memory, pids and CPU limits written, removed afterwards', async () => {
    const running = sh(sandbox, 'sleep 2; echo done');
    await sleep(1000);
    const groups = sandbox.cgroups!.parentDirs.flatMap((dir) => fs.readdirSync(dir).map((name) => path.join(dir, name)));
    const calls = groups.filter((dir) => path.basename(dir).startsWith('call-'));
    const read = (file: string) =>
      fs
        .readFileSync(
          calls.map((dir) => path.join(dir, file)).find((f) => fs.existsSync(f))!,
          'utf8',
        )
        .trim();
    if (sandbox.cgroups!.version === 1) {
      assert.equal(read('memory.limit_in_bytes'), String(1024 * MIB));
      assert.equal(read('pids.max'), '128');
      assert.equal(`${read('cpu.cfs_quota_us')} ${read('cpu.cfs_period_us')}`, '100000 100000');
    } else {
      assert.equal(read('memory.max'), String(1024 * MIB));
      assert.equal(read('pids.max'), '128');
      assert.equal(read('cpu.max'), '100000 100000');
    }
    assert.ok(read('cgroup.procs').split('\n').length >= 3, 'bwrap and the command are in the group');
    assert.equal((await running).stdout, 'done\n');
    const left = sandbox.cgroups!.parentDirs.flatMap((dir) => fs.readdirSync(dir).filter((name) => name.startsWith('call-')));
    assert.deepEqual(left, [], 'the call groups are gone');
  });

  test('three processes of 1 GiB each: stopped at the memory limit, and the result says so', async () => {
    const grab = `python3 -c "import time; x = bytearray(1 << 30); x[::4096] = b'\\\\1' * (1 << 18); print('got 1 GiB', flush=True); time.sleep(5)"`;
    const r = await attack({ argv: ['sh', '-c', `for i in 1 2 3; do ${grab} & done; wait; echo done`], ttlSeconds: 60 });
    assert.equal(r.stdout, 'done\n', 'no process got its 1 GiB');
    assert.deepEqual(r.limitsHit, ['memory']);
    assert.deepEqual(r.notes, [
      "[memory limit: the call's processes together may use 1024 MiB, /tmp included (SANDBOX_MEMORY_MB); a process that went past it was killed]",
    ]);
  });

  test('2.5 GiB written to /tmp: ENOSPC at the tmpfs limit, the host disk untouched', async () => {
    const before = fs.statfsSync(os.tmpdir());
    let lowest = before.bavail;
    const watch = setInterval(() => (lowest = Math.min(lowest, fs.statfsSync(os.tmpdir()).bavail)), 20);
    let r: SandboxResult;
    try {
      const script = 'for i in 1 2 3 4 5 6 7 8 9 10; do dd if=/dev/zero of=/tmp/f$i bs=1M count=256 status=none; done; sleep 0.5; du -sb /tmp';
      r = await attack({ argv: ['sh', '-c', script], ttlSeconds: 60 });
    } finally {
      clearInterval(watch);
    }
    assert.match(r.stdout, /dd: error writing '\/tmp\/f2': No space left on device/);
    const kept = Number(/^(\d+)\s+\/tmp$/m.exec(r.stdout)?.[1]);
    assert.ok(kept >= 255 * MIB && kept <= 257 * MIB, `/tmp held ${kept} bytes`);
    const hostDrop = (before.bavail - lowest) * before.bsize;
    assert.ok(hostDrop < 1024 * MIB, `the host's free space dropped by ${hostDrop} bytes`);
    assert.deepEqual(r.limitsHit, ['tmp']);
    assert.deepEqual(r.notes, ['[/tmp is full: it holds at most 256 MiB (SANDBOX_TMP_MB)]']);
  });

  test('a fork bomb: stopped at the pids limit, nothing left behind, and the result says so', async () => {
    assert.ok(sandbox.cgroups, 'never without the pids limit');
    const bomb = `f_${randomBytes(6).toString('hex')}`;
    // RLIMIT_NPROC of 1000 in the sandbox's user namespace: a second bound, above the pids limit of 128.
    const r = await attack({
      argv: ['prlimit', '--nproc=1000', '--', 'sh', '-c', `${bomb}() { ${bomb} | ${bomb} & }; ${bomb}; wait`],
      ttlSeconds: 30,
    });
    assert.match(r.stdout, /Cannot fork/);
    assert.equal(r.timedOut, false);
    assert.deepEqual(r.limitsHit, ['pids']);
    assert.deepEqual(r.notes, ['[process limit: the call may run 128 processes and threads at once (SANDBOX_PIDS); starting more failed]']);
    assert.equal(processesWith(bomb), '');
  });

  test('CPU: a call is held to SANDBOX_CPUS, and a call the ttl ends while held says so', async () => {
    const slow = await openSandbox(sandboxSettings('bubblewrap', { SANDBOX_CPUS: '0.1' }));
    try {
      const r = await sh(slow, 'while :; do :; done', { ttlSeconds: 3 });
      assert.equal(r.timedOut, true);
      assert.deepEqual(r.notes, ['[CPU limit: the call gets 0.1 CPUs (SANDBOX_CPUS) and was using all of it when the ttl ended it]']);
    } finally {
      await slow.close();
    }
  });
});

describe('attacks on the kernel surface', { skip: NEEDS_ROOT }, () => {
  test('no new user namespaces: `unshare -Ur id` fails', async () => {
    const r = await attack({ argv: ['sh', '-c', 'unshare -Ur id; echo "status $?"; unshare -n true; echo "status $?"'] });
    assert.equal(
      r.stdout,
      'unshare: unshare failed: Operation not permitted\nstatus 1\nunshare: unshare failed: Operation not permitted\nstatus 1\n',
    );
  });

  test('the seccomp filter refuses keyctl, bpf, ptrace, mount and the rest; ordinary calls still work', async () => {
    // System call numbers of the two architectures the sandbox is used on.
    const probe = `import ctypes, errno, os, platform
NR = {
  "x86_64": dict(keyctl=250, add_key=248, bpf=321, ptrace=101, mount=165, perf_event_open=298, userfaultfd=323, unshare=272, setns=308, process_vm_readv=310, io_uring_setup=425, clone3=435),
  "aarch64": dict(keyctl=219, add_key=217, bpf=280, ptrace=117, mount=40, perf_event_open=241, userfaultfd=282, unshare=97, setns=268, process_vm_readv=270, io_uring_setup=425, clone3=435),
}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
args = dict(keyctl=[0, -3, 1, 0, 0], unshare=[0x10000000], ptrace=[0, 0, 0, 0], mount=[0, 0, 0, 0, 0])
for name in NR:
    ctypes.set_errno(0)
    r = libc.syscall(NR[name], *[ctypes.c_long(a) for a in args.get(name, [0, 0, 0, 0, 0, 0])])
    print(name, "allowed" if r >= 0 else errno.errorcode[ctypes.get_errno()])
pid = os.fork()
if pid == 0:
    os._exit(7)
print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0], "fork works" if os.waitpid(pid, 0)[1] >> 8 == 7 else "fork BROKEN")`;
    const r = await attack({ argv: ['python3', '-c', probe] });
    const blocked = ['keyctl', 'add_key', 'bpf', 'ptrace', 'mount', 'perf_event_open', 'userfaultfd', 'unshare', 'setns', 'process_vm_readv'];
    assert.equal(r.stdout, [...blocked.map((name) => `${name} EPERM`), 'io_uring_setup ENOSYS', 'clone3 ENOSYS', '2 fork works', ''].join('\n'));
  });

  test('/etc shows only the files tools need, and the sandbox’s own user', async () => {
    const r = await attack({ argv: ['sh', '-c', 'ls -A /etc | tr "\\n" " "; echo; cat /etc/passwd /etc/group; whoami; ls /etc/ssl'] });
    const fromHost = ['alternatives', 'ld.so.cache', 'localtime', 'protocols', 'services', 'ssl'].filter((name) => fs.existsSync(`/etc/${name}`));
    const expected = [...fromHost, 'group', 'hosts', 'nsswitch.conf', 'passwd'].sort();
    assert.equal(
      r.stdout,
      `${expected.join(' ')} \n` +
        'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\nroot:x:0:\nnogroup:x:65534:\n' +
        `nobody\n${['certs', 'openssl.cnf'].filter((name) => fs.existsSync(`/etc/ssl/${name}`)).join('\n')}\n`,
    );
    const node = await call(sandbox, { argv: ['node', '-e', 'console.log(require("os").userInfo().username, require("os").userInfo().homedir)'] });
    assert.equal(node.stdout, 'nobody /tmp\n');
  });

  test('PATH inside is the fixed system one, whatever PATH the worker was started with', async () => {
    // What `npm start` and a version manager put in front of the worker's PATH.
    const workerPath = [
      path.join(ROOT, 'node_modules/.bin'),
      '/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin',
      process.env.PATH,
    ].join(':');
    const started = await openSandbox({ ...sandboxSettings('bubblewrap'), workerPath });
    try {
      const r = await sh(started, 'echo "$PATH"; command -v python3; command -v sh');
      assert.equal(r.stdout, `${SANDBOX_PATH}\n/usr/bin/python3\n/usr/bin/sh\n`);
      assert.equal(SANDBOX_PATH, '/usr/local/sbin:/usr/local/bin:/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    } finally {
      await started.close();
    }
  });
});

describe('the cap on concurrent calls (SANDBOX_MAX_CONCURRENT)', { skip: NEEDS_ROOT }, () => {
  test('calls beyond it wait for a slot (reporting progress), the wait counts against the ttl, and the result says so', async () => {
    const single = await openSandbox(sandboxSettings('bubblewrap', { SANDBOX_MAX_CONCURRENT: '1' }));
    try {
      const runtime = (ttl_seconds: number): RuntimeParams => ({ dyno_size: 'standard-1x', ttl_seconds, max_calls: 3, tool_params: {} });
      const progress: unknown[] = [];
      const commands = new CommandRuntime(single);
      const first = sh(single, 'sleep 3; echo first');
      await sleep(200);
      const second = commands.runLocally(
        { runtime: runtime(20), callKey: 'run:1', signal: new AbortController().signal, progress: (d) => progress.push(d) },
        { argv: ['sh', '-c', 'echo second'] },
      );
      const tooShort = sh(single, 'echo never', { ttlSeconds: 1 });
      const cancelled = new AbortController();
      const cancelledCall = assert.rejects(sh(single, 'echo never', { signal: cancelled.signal }), /run cancelled/);
      const limited = sh(single, 'grep "Max cpu time" /proc/self/limits', { ttlSeconds: 20 });
      setTimeout(() => cancelled.abort(new Error('run cancelled')), 300);

      await assert.rejects(tooShort, (err: Error) => {
        assert.ok(err instanceof SandboxQueueTimeoutError);
        assert.equal(
          err.message,
          'timed out after 1s waiting for a free sandbox slot: this worker runs 1 sandboxed call at once (SANDBOX_MAX_CONCURRENT) and none finished in time; nothing was run',
        );
        return true;
      });
      await cancelledCall;
      assert.equal((await first).stdout, 'first\n');
      const waited = await second;
      assert.equal(waited.stdout, 'second\n');
      assert.ok(waited.queuedMs >= 1500, `waited ${waited.queuedMs} ms`);
      assert.deepEqual(progress, [{ waiting: 'for a free sandbox slot (SANDBOX_MAX_CONCURRENT=1)' }]);
      assert.equal(waited.notes.length, 1);
      assert.match(
        waited.notes[0]!,
        /^\[waited \d+\.\ds for a free sandbox slot: this worker runs 1 sandboxed call at once \(SANDBOX_MAX_CONCURRENT\); the wait counted against the ttl\]$/,
      );
      // What is left of its ttl after the wait is what it runs with: its CPU-time limit and its kill timer.
      const late = await limited;
      assert.ok(late.queuedMs >= 1500, `waited ${late.queuedMs} ms`);
      const cpuLimit = Number(/^Max cpu time\s+(\d+)/m.exec(late.stdout)?.[1]);
      assert.equal(cpuLimit, Math.ceil(20 - late.queuedMs / 1000));
    } finally {
      await single.close();
    }
  });
});

describe('a host where the limits cannot be set', () => {
  // A worker running as nobody cannot make cgroups here.
  const asNobody = (env: Record<string, string>) => {
    const child = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        process.execPath,
        '--import',
        'tsx',
        'test/support/sandbox-call.ts',
        'sh',
        '-c',
        'echo ran',
      ],
      { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/tmp', ...env }, timeout: 60_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    return JSON.parse(child.stdout) as { log: string[]; result?: SandboxResult; error?: { name: string; message: string; remedy: string } };
  };

  test('refuses sandboxed calls, saying why and naming the opt-out; SANDBOX_LIMITS=off runs them, logged', { skip: NEEDS_ROOT }, () => {
    const refused = asNobody({});
    assert.equal(refused.result, undefined, 'nothing ran');
    assert.equal(refused.error?.name, 'SandboxUnavailableError');
    assert.match(
      refused.error.message,
      // v1 fails making the parent group, v2 (where the worker's group is not its own) already handing the controllers down.
      /^cannot set per-call limits: (EACCES: permission denied, mkdir '\/sys\/fs\/cgroup\/.*durable-agents-sandbox-\d+-[0-9a-f]+'|cannot write .* EACCES: .*)$/,
    );
    assert.match(refused.error.remedy, /or set SANDBOX_LIMITS=off to run sandboxed tools without per-call limits\.$/);
    assert.match(refused.log.join('\n'), /^warn: the local sandbox cannot run tools: cannot set per-call limits: /m);

    const optedOut = asNobody({ SANDBOX_LIMITS: 'off' });
    assert.equal(optedOut.result?.stdout, 'ran\n');
    assert.match(optedOut.log.join('\n'), /^warn: SANDBOX_LIMITS=off: sandboxed calls run WITHOUT per-call memory, process and CPU limits/m);
  });
});
