// runOneOffDyno against the Platform API + TLS rendezvous double. The dyno
// client runs in a child process (test/support/run-dyno.ts) because it must
// trust the double's CA through NODE_EXTRA_CA_CERTS, which Node reads at
// start-up only; the product code keeps normal certificate verification.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ABORT_STOP_WAIT_MS, TTL_GRACE_MS } from '../../runtimes/heroku/one-off-dyno';
import { apiError, startHerokuPlatform, type HerokuPlatformDouble } from '../doubles/heroku-platform';
import { until } from '../support/wait';

const TOKEN = `test-token-${randomBytes(12).toString('hex')}`;
const RUNNER = path.join(__dirname, '..', 'support', 'run-dyno.ts');
const MARKER = '\uFFFF heroku-command-exit-status: ';

interface RunOutcome {
  ok: boolean;
  result?: { output: string; exitStatus: number | null; timedOut: boolean; truncated: boolean; dynoName: string };
  error?: { name: string; message: string; status?: number; id?: string };
  progress: Array<{ dynoName?: string; bytes: number; at: number }>;
  ms: number;
  stderr: string;
  stdout: string;
}

let platform: HerokuPlatformDouble;

function runDyno(args: Record<string, unknown>, opts: { token?: string; trustCa?: boolean } = {}): Promise<RunOutcome> {
  const req = {
    app: 'my-app',
    size: 'standard-1x',
    ttlSeconds: 30,
    env: {},
    maxOutputBytes: 64 * 1024,
    ...args,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, HEROKU_API_KEY: opts.token ?? TOKEN, HEROKU_API_URL: platform.url };
  delete env.NODE_EXTRA_CA_CERTS;
  if (opts.trustCa !== false) env.NODE_EXTRA_CA_CERTS = platform.caFile;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(req)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve({ ...(JSON.parse(line) as Omit<RunOutcome, 'stderr' | 'stdout'>), stderr, stdout });
      } catch {
        reject(new Error(`run-dyno exited with ${code}; stdout: ${stdout}; stderr: ${stderr}`));
      }
    });
  });
}

function ok(o: RunOutcome): NonNullable<RunOutcome['result']> {
  assert.equal(o.ok, true, `expected a result, got ${JSON.stringify(o.error)} ${o.stderr}`);
  return o.result!;
}

const eventually = (check: () => boolean, what = 'the double to see it') => until(check, what, 15_000);

describe('runOneOffDyno against the Platform API double', () => {
  before(async () => {
    platform = await startHerokuPlatform({ token: TOKEN });
  });
  after(async () => {
    await platform.close();
  });

  test('streams output and exit status 0; sends the documented create body; strips the marker', async () => {
    const creates = platform.creates.length;
    const r = ok(
      await runDyno({
        command: 'echo hello; echo "to stderr" >&2',
        env: { TOOL_CALL_ID: 'tooluse_1', TOOL_ARGUMENTS: '{}' },
        size: 'standard-2x',
        ttlSeconds: 42,
      }),
    );
    assert.equal(r.exitStatus, 0);
    assert.equal(r.timedOut, false);
    assert.equal(r.truncated, false);
    assert.match(r.dynoName, /^run\.\d+$/);
    assert.match(r.output, /^hello\n/m);
    assert.match(r.output, /^to stderr\n/m);
    assert.ok(!r.output.includes('\uFFFF') && !r.output.includes('heroku-command-exit-status'), r.output);

    assert.equal(platform.creates.length, creates + 1);
    const c = platform.creates.at(-1)!;
    assert.equal(c.status, 201);
    assert.equal(c.app, 'my-app');
    assert.deepEqual(c.body, {
      command: `(\necho hello; echo "to stderr" >&2\n)\necho "${MARKER}$?"`,
      attach: true,
      force_no_tty: true,
      env: { TOOL_CALL_ID: 'tooluse_1', TOOL_ARGUMENTS: '{}' },
      size: 'standard-2x',
      type: 'run',
      time_to_live: 42,
    });
    assert.match(String(c.headers.accept), /application\/vnd\.heroku\+json; version=3/);
    assert.ok(!platform.stops.some((s) => s.dyno === r.dynoName), 'a dyno that exited is not stopped');
  });

  test('non-zero exit status, output without a trailing newline', async () => {
    const r = ok(await runDyno({ command: "printf 'no newline'; exit_with() { return $1; }; exit_with 7" }));
    assert.equal(r.exitStatus, 7);
    assert.equal(r.output, 'no newline');
    assert.equal(r.timedOut, false);

    const r2 = ok(await runDyno({ command: 'echo "oops" >&2; false' }));
    assert.equal(r2.exitStatus, 1);
    assert.equal(r2.output, 'oops\n');
  });

  test('arguments with shell metacharacters travel in env and are printed literally, never executed', async () => {
    const pwned = path.join(os.tmpdir(), `pwned-${randomBytes(6).toString('hex')}`);
    const evil = `$(touch ${pwned}); \`id\` && echo "x" | cat; exit 9 #`;
    const args = { x: evil };
    const r = ok(
      await runDyno({
        command: 'printf "%s\\n" "$TOOL_ARG_X"; printf "%s\\n" "$TOOL_ARGUMENTS"',
        env: { TOOL_ARG_X: evil, TOOL_ARGUMENTS: JSON.stringify(args) },
      }),
    );
    assert.equal(r.output, `${evil}\n${JSON.stringify(args)}\n`);
    assert.equal(r.exitStatus, 0);
    assert.ok(!existsSync(pwned), 'the command substitution ran');
    assert.ok(!/uid=\d+/.test(r.output), 'the backticks ran');
    // The command sent is the tool's command, untouched: no argument in it.
    assert.ok(!platform.creates.at(-1)!.body.command.includes('pwned'));
  });

  test('output cap: keeps maxOutputBytes, sets truncated, still reports the exit status', async () => {
    const r = ok(await runDyno({ command: "head -c 300000 /dev/zero | tr '\\0' a; echo; (exit 3)", maxOutputBytes: 1000 }));
    assert.equal(r.truncated, true);
    assert.equal(r.output, 'a'.repeat(1000));
    assert.equal(r.exitStatus, 3);

    // cut on a character boundary: "ab€" is 5 bytes; 4 allowed → "ab"
    const r2 = ok(await runDyno({ command: "printf 'ab€€'", maxOutputBytes: 4 }));
    assert.equal(r2.output, 'ab');
    assert.equal(r2.truncated, true);
    assert.equal(r2.exitStatus, 0);

    const r3 = ok(await runDyno({ command: "printf 'abcd'", maxOutputBytes: 4 }));
    assert.equal(r3.output, 'abcd');
    assert.equal(r3.truncated, false);
  });

  test('ttl: a command that outlives ttlSeconds returns timedOut with the partial output, and the dyno is stopped', async () => {
    const r = ok(await runDyno({ command: 'echo started; sleep 30; echo never', ttlSeconds: 1 }));
    assert.equal(r.timedOut, true);
    assert.equal(r.exitStatus, null);
    assert.equal(r.output, 'started\n');
    await eventually(() => platform.stops.some((s) => s.dyno === r.dynoName && s.app === 'my-app'));
    await eventually(() => platform.running() === 0);
    // A platform that does not end the dyno at its time_to_live: our own deadline (ttl + grace) does, well before the command would.
    platform.setTimeToLiveEnforced(false);
    try {
      const o = await runDyno({ command: 'echo started; sleep 30', ttlSeconds: 1 });
      assert.equal(ok(o).timedOut, true);
      assert.ok(o.ms >= 1000 + TTL_GRACE_MS && o.ms < 15_000, `took ${o.ms} ms`);
      assert.ok(o.progress.length >= 1 && o.progress.some((p) => p.dynoName === o.result!.dynoName));
      await eventually(() => platform.stops.some((s) => s.dyno === o.result!.dynoName));
    } finally {
      platform.setTimeToLiveEnforced(true);
    }
  });

  test('onProgress reports the dyno and the bytes read as output arrives', async () => {
    const o = await runDyno({ command: 'for i in 1 2 3 4 5; do echo $i; sleep 1; done' });
    const r = ok(o);
    assert.equal(r.output, '1\n2\n3\n4\n5\n');
    assert.ok(o.progress.length >= 3, JSON.stringify(o.progress));
    const times = [0, ...o.progress.map((p) => p.at), o.ms];
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! <= 5000, JSON.stringify(times));
    assert.ok(o.progress.at(-1)!.bytes > 0);
  });

  test('a background process holding the stream open does not hold the result: exit status returned, dyno stopped', async () => {
    const o = await runDyno({ command: 'sleep 20 & echo done' });
    const r = ok(o);
    assert.equal(r.output, 'done\n');
    assert.equal(r.exitStatus, 0);
    assert.equal(r.timedOut, false);
    assert.ok(o.ms < 8000, `took ${o.ms} ms`);
    await eventually(() => platform.stops.some((s) => s.dyno === r.dynoName));
  });

  test('cancellation: rejects promptly with the AbortError and stops the dyno', async () => {
    const before = platform.stops.length;
    const o = await runDyno({ command: 'echo started; sleep 30', abortAfterMs: 1500 });
    assert.equal(o.ok, false);
    assert.equal(o.error!.name, 'AbortError');
    // Far less than the command's 30 s: the abort, not the command, ended it.
    assert.ok(o.ms < 1500 + ABORT_STOP_WAIT_MS + 10_000, `took ${o.ms} ms`);
    await eventually(() => platform.stops.length > before);
    await eventually(() => platform.running() === 0);
  });

  test('cancellation while the create call is pending: rejects at once, the late dyno is stopped', async () => {
    const creates = platform.creates.length;
    const stops = platform.stops.length;
    // The create answers after 10 s; the abort comes at 0.3 s and must not wait for it.
    platform.setCreateHandler(() => new Promise((r) => setTimeout(() => r(undefined), 10_000)));
    try {
      const o = await runDyno({ command: 'echo started; sleep 30', abortAfterMs: 300 });
      assert.equal(o.error?.name, 'AbortError');
      assert.ok(o.ms < 5_000, `took ${o.ms} ms`);
      assert.ok(o.progress.length === 0 || o.progress.every((p) => p.dynoName === undefined));
      // run-dyno printed its answer right after the abort, then stayed alive for the late stop
      assert.equal(platform.creates.length, creates + 1);
      const c = platform.creates.at(-1)!;
      assert.equal(c.status, 201);
      await eventually(() => platform.stops.length === stops + 1 && platform.running() === 0);
    } finally {
      platform.setCreateHandler(undefined);
    }
  });

  test('a process killed before its ttl: exit status unknown, not timed out, dyno stopped', async () => {
    const r = ok(await runDyno({ command: 'echo before; kill -9 $$' }));
    assert.equal(r.output, 'before\n');
    assert.equal(r.exitStatus, null);
    assert.equal(r.timedOut, false);
    await eventually(() => platform.stops.some((s) => s.dyno === r.dynoName));
  });

  test('unknown app: PlatformError 404 naming the app and quoting Heroku', async () => {
    const o = await runDyno({ app: 'missing-app', command: 'echo hi' });
    assert.equal(o.ok, false);
    assert.equal(o.error!.name, 'PlatformError');
    assert.equal(o.error!.status, 404);
    assert.equal(o.error!.id, 'not_found');
    assert.match(o.error!.message, /"missing-app"/);
    assert.match(o.error!.message, /Couldn't find that app\./);
  });

  test('wrong token: PlatformError 401 without the token anywhere', async () => {
    const wrong = `wrong-${randomBytes(12).toString('hex')}`;
    const o = await runDyno({ command: 'echo hi' }, { token: wrong });
    assert.equal(o.ok, false);
    assert.equal(o.error!.name, 'PlatformError');
    assert.equal(o.error!.status, 401);
    assert.equal(o.error!.id, 'unauthorized');
    assert.match(o.error!.message, /"my-app"/);
    assert.match(o.error!.message, /Invalid credentials provided\./);
    for (const text of [o.stdout, o.stderr]) {
      assert.ok(!text.includes(wrong) && !text.includes(TOKEN), 'token leaked');
    }
  });

  test('invalid parameters (422) and rate limits (429) become PlatformErrors', async () => {
    const o = await runDyno({ command: 'echo hi', size: 'huge-9x' });
    assert.equal(o.error?.status, 422);
    assert.equal(o.error?.id, 'invalid_params');
    assert.match(o.error.message, /huge-9x/);

    platform.setCreateHandler(() => apiError(429, 'rate_limit', 'Your account reached the API rate limit.'));
    try {
      const o2 = await runDyno({ command: 'echo hi' });
      assert.equal(o2.error?.status, 429);
      assert.match(o2.error.message, /rate limit/);
    } finally {
      platform.setCreateHandler(undefined);
    }
  });

  test('409 on create is retried like the CLI', async () => {
    const start = platform.creates.length;
    platform.setCreateHandler(({ call }) => (call <= start + 2 ? apiError(409, 'conflict', 'Release not ready.') : undefined));
    try {
      const r = ok(await runDyno({ command: 'echo after conflicts' }));
      assert.equal(r.output, 'after conflicts\n');
      assert.equal(platform.creates.length, start + 3);
    } finally {
      platform.setCreateHandler(undefined);
    }
    // More than two conflicts in a row: the error goes to the caller.
    const start2 = platform.creates.length;
    platform.setCreateHandler(() => apiError(409, 'conflict', 'Release not ready.'));
    try {
      const o = await runDyno({ command: 'echo hi' });
      assert.equal(o.error?.status, 409);
      assert.equal(platform.creates.length, start2 + 3);
    } finally {
      platform.setCreateHandler(undefined);
    }
  });

  test('rendezvous certificate is verified: an untrusted CA fails and the dyno is stopped', async () => {
    const before = platform.stops.length;
    const o = await runDyno({ command: 'echo hi; sleep 10' }, { trustCa: false });
    assert.equal(o.ok, false);
    assert.equal(o.error!.name, 'PlatformError');
    assert.match(o.error!.message, /cannot read the output of dyno run\.\d+ on app "my-app"/);
    assert.match(o.error!.message, /certificate/i);
    await eventually(() => platform.stops.length > before);
  });
});
