/**
 * cgroup v2 on the real unified hierarchy, as far as this host allows: where
 * the memory, pids and cpu controllers are bound to v1 hierarchies (as on
 * this project's development machine), the v2 hierarchy cannot limit
 * anything, so what is tested here is the refusal of such a group and the
 * mechanics every v2 call uses: joining a group before anything runs,
 * cgroup.kill and removal. The limits themselves are tested on v2 hosts by
 * sandbox-attacks.test.ts, which runs on whichever version the worker finds.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callGroup, missingV2Controllers, openV2 } from '../../runtimes/sandbox/cgroup-v2';
import { joinCommand } from '../../runtimes/sandbox/local-sandbox';
import { until } from '../support/wait';

const unified = fs
  .readFileSync('/proc/self/mounts', 'utf8')
  .split('\n')
  .map((line) => line.split(' '))
  .find((fields) => fields[2] === 'cgroup2')?.[1];
const skip = (process.getuid?.() !== 0 && 'needs root') || (!unified && 'no cgroup v2 hierarchy is mounted');

describe('cgroup v2 mechanics on the real hierarchy', { skip }, () => {
  let testGroup = '';
  before(() => {
    testGroup = path.join(unified!, `durable-agents-v2-test-${process.pid}`);
    fs.mkdirSync(testGroup);
  });
  // Whatever a failed test left: its processes are killed and its groups removed.
  after(async () => {
    for (const entry of fs.readdirSync(testGroup, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const group = path.join(testGroup, entry.name);
      fs.writeFileSync(path.join(group, 'cgroup.kill'), '1');
      await until(() => fs.readFileSync(path.join(group, 'cgroup.events'), 'utf8').includes('populated 0'), `${group} to empty`, 5_000);
      fs.rmdirSync(group);
    }
    fs.rmdirSync(testGroup);
  });

  test('a group whose memory, pids or cpu controller is missing is refused, and nothing is made in it', (t) => {
    const missing = missingV2Controllers(testGroup);
    if (missing.length === 0) return t.skip('this host hands all three down: the attacks test covers it');
    const before = fs.readdirSync(testGroup);
    assert.throws(() => openV2(testGroup, { memoryBytes: 1024 ** 3, pids: 128 }), {
      message: `cgroup v2: the ${missing.join(', ')} controller(s) are not available in ${testGroup}`,
    });
    assert.deepEqual(fs.readdirSync(testGroup), before);
  });

  test('a call joins its group before anything runs, and cgroup.kill ends every process in it', async () => {
    const group = path.join(testGroup, 'call-mechanics');
    fs.mkdirSync(group);
    const call = callGroup(group);
    const [file = '', ...args] = [...joinCommand(call.procsFiles), '/bin/sh', '-c', 'sleep 1000 & sleep 1000 & cat /proc/self/cgroup; wait'];
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await until(() => out.includes('0::'), 'the command to report its cgroup', 10_000);
    assert.match(out, new RegExp(`^0::/${path.basename(testGroup)}/call-mechanics$`, 'm'), 'the command runs in the call group');
    const pids = fs.readFileSync(call.procsFiles[0]!, 'utf8').split('\n').filter(Boolean);
    assert.equal(pids.length, 3, 'the shell and its two sleeps');
    await call.remove();
    assert.equal(fs.existsSync(group), false, 'the group is removed');
    await new Promise((resolve) => (child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(null)));
    assert.equal(child.signalCode, 'SIGKILL');
    // Dead, or a zombie waiting for its parent to collect it.
    const dead = (pid: string) => !fs.existsSync(`/proc/${pid}`) || /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    await until(() => pids.every(dead), 'every process of the call to die', 5_000);
    assert.deepEqual(call.usage(), { oomKills: 0, pidsLimitHit: false, cpuThrottled: false });
  });

  test('a call that cannot join its group never runs its command', () => {
    const marker = path.join(testGroup, 'not-a-group', 'cgroup.procs');
    const [file = '', ...args] = [...joinCommand([marker]), '/bin/echo', 'ran'];
    const child = spawnSync(file, args, { encoding: 'utf8' });
    assert.equal(child.status, 125);
    assert.equal(child.stdout, '');
    assert.match(child.stderr, /cannot create .*not-a-group\/cgroup.procs: Directory nonexistent/);
  });
});
