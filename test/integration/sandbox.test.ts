/**
 * The local sandbox (runtimes/sandbox) run directly: real bubblewrap, real
 * cgroups, real processes, a real TCP server on 127.0.0.1 that the sandbox
 * must not reach. Needs the Debian packages bubblewrap, util-linux (prlimit,
 * setpriv) and python3-seccomp, and root (for the per-call cgroups). The
 * attacks on its limits are in sandbox-attacks.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SandboxMode } from '../../common/config';
import {
  LIMITS_OFF_RLIMITS,
  type LocalSandbox,
  SandboxUnavailableError,
  type SandboxRequest,
  type SandboxSettings,
} from '../../runtimes/sandbox/local-sandbox';
import { SANDBOX_PATH } from '../../runtimes/sandbox/bubblewrap';
import { openSandbox, sandboxSettings } from '../support/sandbox';

const ROOT = path.resolve(__dirname, '../..');
const SECRET = `fake-secret-${randomBytes(8).toString('hex')}`;

const sandboxes = new Map<string, LocalSandbox>();
/** One sandbox per mode (and bwrap), opened once for the file. */
async function sandboxFor(mode: SandboxMode, more: Partial<SandboxSettings> = {}): Promise<LocalSandbox> {
  const key = `${mode}:${JSON.stringify(more)}`;
  let sandbox = sandboxes.get(key);
  if (!sandbox) {
    sandbox = await openSandbox({ ...sandboxSettings(mode), ...more });
    sandboxes.set(key, sandbox);
  }
  return sandbox;
}

async function run(req: Partial<SandboxRequest> & { argv: string[] }, mode: SandboxMode = 'bubblewrap', more: Partial<SandboxSettings> = {}) {
  return (await sandboxFor(mode, more)).run({ ttlSeconds: 20, maxOutputBytes: 64 * 1024, ...req });
}
const sh = (script: string, req: Partial<SandboxRequest> = {}, mode: SandboxMode = 'bubblewrap') => run({ argv: ['sh', '-c', script], ...req }, mode);
const NO_LIMIT_HIT = { limitsHit: [], queuedMs: 0, notes: [] };

/** Processes on the host whose command line contains `marker` (the sandbox's pid namespaces included). */
function processesWith(marker: string): string {
  return spawnSync('pgrep', ['-af', marker], { encoding: 'utf8' }).stdout.trim();
}

interface Listener {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function listen(): Promise<Listener> {
  const server = net.createServer((socket) => {
    listener.connections++;
    socket.on('error', () => undefined); // the probe may close first
    socket.end('hello from the host\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listener: Listener = {
    port: (server.address() as net.AddressInfo).port,
    connections: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return listener;
}

let host: Listener;
before(async () => {
  process.env.SANDBOX_TEST_SECRET = SECRET; // in the worker's (this process's) environment
  host = await listen();
});
after(async () => {
  delete process.env.SANDBOX_TEST_SECRET;
  for (const sandbox of sandboxes.values()) await sandbox.close();
  await host.close();
});

describe('bubblewrap sandbox', () => {
  test('runs a command and reports stdout, stderr and the exit status apart', async () => {
    const r = await sh('echo out; echo err >&2; exit 3');
    assert.deepEqual(r, {
      stdout: 'out\n',
      stderr: 'err\n',
      exitStatus: 3,
      timedOut: false,
      truncated: { stdout: false, stderr: false },
      ...NO_LIMIT_HIT,
    });
  });

  test('mergeStderr gives one stream in write order', async () => {
    const r = await sh('echo one; echo two >&2; echo three', { mergeStderr: true });
    assert.equal(r.stdout, 'one\ntwo\nthree\n');
    assert.equal(r.stderr, '');
  });

  test('files are written into /tmp, a tmpfs of the sandbox’s own that is HOME, TMPDIR and the working dir', async () => {
    const before = fs.readdirSync(os.tmpdir());
    const r = await run({
      argv: ['python3', 'prog/main.py'],
      files: { 'prog/main.py': 'import os\nprint(os.getcwd(), os.environ["HOME"], os.environ["TMPDIR"], open("prog/main.py").read()[:6])\n' },
    });
    assert.equal(r.stdout, '/tmp /tmp /tmp import\n', r.stderr);
    assert.equal(r.exitStatus, 0);
    const fsType = await sh('stat -f -c %T /tmp; stat -c "%a %U" /tmp');
    assert.equal(fsType.stdout, `tmpfs\n1777 ${process.getuid?.() === 0 ? 'nobody' : 'sandbox'}\n`);
    assert.deepEqual(
      fs.readdirSync(os.tmpdir()).filter((name) => !before.includes(name) && name.startsWith('tool-sandbox-')),
      [],
      'nothing on the host disk',
    );
    await assert.rejects(run({ argv: ['true'], files: { '../etc/passwd': 'x' } }), /'..\/etc\/passwd' is not a relative path inside \/tmp/);
  });

  test('the environment is exactly PATH, HOME, LANG, TMPDIR and the given variables: no secret of the worker', async () => {
    const r = await sh('env; echo; tr "\\0" "\\n" < /proc/1/environ; cat /proc/*/environ', { env: { TOOL_ARG_X: 'x' } });
    assert.equal(r.exitStatus, 0, r.stderr);
    assert.ok(!r.stdout.includes(SECRET), 'the secret is not visible');
    const names = r.stdout
      .split('\n\n')[0]!
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('=')[0])
      .sort();
    assert.deepEqual(names, ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR', 'TOOL_ARG_X']); // PWD: set by sh itself
    assert.match(r.stdout, /^LANG=C\.UTF-8$/m);
  });

  test('only the sandbox processes are visible, and they cannot see the host', async () => {
    const r = await sh('ls /proc | grep -c "^[0-9]"; ls / | tr "\\n" " "');
    const [count, rootDir] = r.stdout.split('\n');
    assert.ok(Number(count) <= 5, `few processes: ${count}`);
    assert.equal(rootDir, 'bin dev etc lib lib64 proc sbin tmp usr ');
  });

  test('there is no network: a TCP server on the host loopback is unreachable', async () => {
    const before = host.connections;
    const r = await run({
      argv: [
        'python3',
        '-c',
        `import socket
try:
  socket.create_connection(("127.0.0.1", ${host.port}), timeout=3)
  print("connected")
except OSError as e:
  print("refused:", e)`,
      ],
    });
    assert.match(r.stdout, /^refused: /);
    const probe = `echo hi > /dev/tcp/127.0.0.1/${host.port} && echo connected || echo failed`;
    const viaBash = await run({ argv: ['bash', '-c', probe], mergeStderr: true });
    assert.match(viaBash.stdout, /Network is unreachable|Connection refused/);
    assert.match(viaBash.stdout, /failed\n$/);
    assert.equal(host.connections, before, 'no connection reached the server');
    // The same probe, unsandboxed, does connect: the test can tell.
    const control = await run({ argv: ['bash', '-c', probe] }, 'none');
    assert.equal(control.stdout, 'connected\n');
  });

  test('the system is read-only and the worker, home and project dirs are not there', async () => {
    const stamp = `sandbox-write-${randomBytes(4).toString('hex')}`;
    const targets = ['/etc', '/usr', '/usr/local', '/var', '/root', '/home', ROOT, os.tmpdir(), path.join(ROOT, 'test')];
    const script = targets.map((dir) => `echo x > ${dir}/${stamp} 2>/dev/null && echo "wrote ${dir}" || echo "refused ${dir}"`).join('; ');
    const r = await sh(`${script}; ls ${ROOT} /var /root 2>&1 | head -5`);
    for (const dir of targets) {
      const expected = dir === os.tmpdir() ? 'wrote' : 'refused'; // /tmp is the sandbox's own work dir
      assert.match(r.stdout, new RegExp(`^${expected} ${dir}$`, 'm'));
      if (dir !== os.tmpdir()) assert.equal(fs.existsSync(path.join(dir, stamp)), false);
    }
    assert.equal(fs.existsSync(path.join(os.tmpdir(), stamp)), false, "the sandbox's /tmp is not the host's");
    assert.match(r.stdout, /No such file or directory/);
    assert.doesNotMatch(r.stdout, /package\.json/);
  });

  test('runs unprivileged when the worker is root', { skip: process.getuid?.() !== 0 && 'the worker is not root' }, async () => {
    const r = await sh('id -u; touch /usr/x 2>&1 | head -1');
    assert.match(r.stdout, /^65534\n.*Read-only file system/);
  });

  test('per process: CPU time = the ttl and no core files; memory and processes are bounded per call instead', async () => {
    const r = await sh('cat /proc/self/limits', { ttlSeconds: 7 });
    const limit = (name: string) => new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(r.stdout)?.slice(1, 3);
    assert.deepEqual(limit('Max cpu time'), ['7', '7']);
    assert.deepEqual(limit('Max core file size'), ['0', '0']);
    // No address-space limit (WebAssembly in Node reserves ~10 GiB of it): the call's cgroup bounds memory.
    assert.deepEqual(limit('Max address space'), ['unlimited', 'unlimited']);
    const wasm = await run({ argv: ['node', '-e', 'new WebAssembly.Memory({ initial: 1 }); console.log("wasm ok")'] });
    assert.equal(wasm.stdout, 'wasm ok\n', wasm.stderr);
  });

  test('SANDBOX_LIMITS=off: no cgroup, per-process limits of address space, file size and processes instead', async () => {
    const off = sandboxSettings('bubblewrap');
    const r = await run({ argv: ['sh', '-c', 'cat /proc/self/limits'], ttlSeconds: 7 }, 'bubblewrap', { limits: { ...off.limits, enforced: false } });
    const limit = (name: string) => new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(r.stdout)?.[1];
    assert.equal(limit('Max cpu time'), '7');
    assert.equal(limit('Max address space'), String(LIMITS_OFF_RLIMITS.addressSpaceBytes));
    assert.equal(limit('Max file size'), String(LIMITS_OFF_RLIMITS.fileSizeBytes));
    assert.equal(limit('Max processes'), String(LIMITS_OFF_RLIMITS.processes));
  });

  test('background processes do not outlive the command', async () => {
    const marker = `sandbox-marker-${randomBytes(6).toString('hex')}`;
    const r = await sh(`sh -c 'sleep 1000; echo ${marker}' & echo started`);
    assert.equal(r.stdout, 'started\n');
    assert.equal(processesWith(marker), '');
  });

  test('the ttl kills the whole sandbox and says so', async () => {
    const marker = `sandbox-marker-${randomBytes(6).toString('hex')}`;
    const started = Date.now();
    const r = await sh(`sh -c 'sleep 1000; echo ${marker}' & echo partial; sleep 1000`, { ttlSeconds: 1.5 });
    const elapsed = Date.now() - started;
    // Not before the ttl, and long before the 1000 s the command would take.
    assert.ok(elapsed >= 1400 && elapsed < 10_000, `ended after ${elapsed} ms`);
    assert.deepEqual(r, {
      stdout: 'partial\n',
      stderr: '',
      exitStatus: null,
      timedOut: true,
      truncated: { stdout: false, stderr: false },
      ...NO_LIMIT_HIT,
    });
    assert.equal(processesWith(marker), '');
  });

  test('cancellation kills the sandbox promptly and rejects with the reason', async () => {
    const marker = `sandbox-marker-${randomBytes(6).toString('hex')}`;
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('run cancelled')), 500);
    const started = Date.now();
    await assert.rejects(sh(`sh -c 'sleep 1000; echo ${marker}'`, { signal: controller.signal }), /run cancelled/);
    assert.ok(Date.now() - started < 10_000, `rejected after ${Date.now() - started} ms`);
    assert.equal(processesWith(marker), '');
  });

  test('output is capped per stream on a character boundary, and the rest is still read', async () => {
    const r = await run({
      argv: ['python3', '-c', 'import sys\nsys.stdout.write("é" * 40000)\nsys.stderr.write("x" * 10)\nsys.exit(4)'],
      maxOutputBytes: 1001,
    });
    assert.equal(r.stdout, 'é'.repeat(500)); // 1000 bytes: the 501st character would be cut in half
    assert.equal(r.stderr, 'xxxxxxxxxx');
    assert.deepEqual(r.truncated, { stdout: true, stderr: false });
    assert.equal(r.exitStatus, 4);
  });

  test('copies of host dirs are put in /tmp, owned by the sandbox', async () => {
    const source = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-copy-'));
    try {
      fs.chmodSync(source, 0o755); // the sandbox's user binds it by path
      fs.mkdirSync(path.join(source, 'sub'));
      fs.writeFileSync(path.join(source, 'sub', 'a.txt'), 'copied');
      const r = await sh('cat cache/sub/a.txt && echo more > cache/sub/b.txt && echo ok', { copies: { cache: source } });
      assert.equal(r.stdout, 'copiedok\n', r.stderr);
      assert.equal(fs.existsSync(path.join(source, 'sub', 'b.txt')), false, 'the source is untouched');
    } finally {
      fs.rmSync(source, { recursive: true, force: true });
    }
  });

  test('a missing bwrap: nothing runs, and the error says why', async () => {
    const before = host.connections;
    const probe = ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${host.port}`];
    await assert.rejects(run({ argv: probe }, 'bubblewrap', { bwrap: '/nonexistent/bwrap' }), (err: Error) => {
      assert.ok(err instanceof SandboxUnavailableError);
      assert.equal(err.message, 'cannot start bubblewrap (/nonexistent/bwrap): there is no such executable');
      assert.match(err.remedy, /or set TOOL_SANDBOX=none/);
      return true;
    });
    await assert.rejects(
      run({ argv: probe }, 'bubblewrap', { workerPath: '/nonexistent' }),
      (err: Error) =>
        err instanceof SandboxUnavailableError && err.message === "bubblewrap is not installed: there is no 'bwrap' on the worker's PATH",
    );
    assert.equal(host.connections, before, 'the probe never ran unsandboxed');
  });

  test('a sandbox that cannot be set up: nothing runs, and bwrap’s own words are passed on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-bwrap-'));
    fs.chmodSync(dir, 0o755); // bwrap is started as nobody when the worker is root
    const fake = path.join(dir, 'bwrap');
    // What bwrap says where user namespaces are not allowed.
    const refusal = 'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.';
    fs.writeFileSync(fake, `#!/bin/sh\necho "${refusal}" >&2\nexit 1\n`, { mode: 0o755 });
    try {
      const before = host.connections;
      const fakeSandbox = await openSandbox({ ...sandboxSettings('bubblewrap'), bwrap: fake });
      try {
        await assert.rejects(
          fakeSandbox.run({ argv: ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${host.port}`], ttlSeconds: 20, maxOutputBytes: 1000 }),
          (err: Error) => {
            assert.ok(err instanceof SandboxUnavailableError);
            assert.equal(err.message, `bubblewrap could not set up the sandbox: ${refusal}`);
            return true;
          },
        );
        assert.equal(host.connections, before);
        // A real bwrap failing during set-up (a bind source that does not exist) is caught the same way.
        const real = execFileSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).trim();
        fs.writeFileSync(fake, `#!/bin/sh\nexec ${real} --ro-bind /nonexistent-source /x "$@"\n`);
        await assert.rejects(
          fakeSandbox.run({ argv: ['true'], ttlSeconds: 20, maxOutputBytes: 1000 }),
          /bubblewrap could not set up the sandbox: bwrap: Can't find source path \/nonexistent-source/,
        );
      } finally {
        await fakeSandbox.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TOOL_SANDBOX=none (the explicit opt-out)', () => {
  test('runs the command with the same clean environment, fixed PATH, per-process limits and a work dir of its own', async () => {
    const script =
      'env | sort | cut -d= -f1 | tr "\\n" " "; test "$PWD" = "$HOME" && echo home-is-cwd; echo "$PATH"; grep -E "Max (cpu time|address space)" /proc/self/limits';
    const r = await sh(script, { env: { TOOL_ARG_X: 'x' }, ttlSeconds: 3 }, 'none');
    assert.ok(!r.stdout.includes(SECRET));
    assert.match(
      r.stdout,
      new RegExp(
        `^HOME LANG PATH PWD TMPDIR TOOL_ARG_X home-is-cwd\\n${SANDBOX_PATH}\\nMax cpu time +3 +3 .*\\nMax address space +${LIMITS_OFF_RLIMITS.addressSpaceBytes} `,
      ),
    );
  });

  test('background processes and time-outs end the whole process group', async () => {
    const marker = `sandbox-marker-${randomBytes(6).toString('hex')}`;
    const r = await sh(`sh -c 'sleep 1000; echo ${marker}' & echo started`, {}, 'none');
    assert.equal(r.stdout, 'started\n');
    assert.equal(processesWith(marker), '');
    const timed = await sh(`sh -c 'sleep 1000; echo ${marker}' & sleep 1000`, { ttlSeconds: 1 }, 'none');
    assert.equal(timed.timedOut, true);
    assert.equal(processesWith(marker), '');
  });
});
