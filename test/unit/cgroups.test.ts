/**
 * The cgroup v1 and v2 backends against a cgroupfs laid out in a temp dir:
 * which files get which values, in the worker's parent group and in each
 * call's group, what a call's usage files mean, and the clean-up of groups
 * left by dead workers. The kernel's side (limits enforced, joining, killing,
 * removal) is tested on the real hierarchies in
 * test/integration/sandbox-attacks.test.ts (v1) and cgroup-v2.test.ts (v2).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { openV1 } from '../../runtimes/sandbox/cgroup-v1';
import { openV2 } from '../../runtimes/sandbox/cgroup-v2';

const GIB = 1024 ** 3;
let root = '';
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-cgroupfs-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const dir = (...parts: string[]) => {
  const d = path.join(root, ...parts);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
const read = (file: string) => fs.readFileSync(file, 'utf8');
const only = (parent: string, prefix: string) => {
  const names = fs.readdirSync(parent).filter((n) => n.startsWith(prefix));
  assert.equal(names.length, 1, `one ${prefix}* in ${parent}: ${names.join(', ')}`);
  return path.join(parent, names[0]!);
};
/** A dead worker's pid: above the kernel's largest pid_max. */
const DEAD_PID = 4_194_305;

describe('cgroup v1', () => {
  test('the parent group bounds memory and pids of all calls; each call group gets all three limits', () => {
    const own = { memory: dir('memory/session'), pids: dir('pids'), cpu: dir('cpu') };
    const cgroups = openV1(own, { memoryBytes: 4 * GIB, pids: 512 });
    const parent = only(own.memory, 'durable-agents-sandbox-');
    assert.match(path.basename(parent), new RegExp(`^durable-agents-sandbox-${process.pid}-[0-9a-f]{8}$`));
    assert.equal(read(path.join(parent, 'memory.limit_in_bytes')), String(4 * GIB));
    assert.equal(read(path.join(only(own.pids, 'durable-agents-sandbox-'), 'pids.max')), '512');
    assert.deepEqual(fs.readdirSync(only(own.cpu, 'durable-agents-sandbox-')), [], 'no CPU bound on the parent');
    assert.equal(cgroups.version, 1);
    assert.equal(cgroups.parentDirs.length, 3);

    const call = cgroups.createCall({ memoryBytes: GIB, pids: 128, cpus: 0.5 });
    const memory = only(parent, 'call-');
    const cpu = only(only(own.cpu, 'durable-agents-sandbox-'), 'call-');
    assert.equal(read(path.join(memory, 'memory.limit_in_bytes')), String(GIB));
    assert.equal(read(path.join(only(only(own.pids, 'durable-agents-sandbox-'), 'call-'), 'pids.max')), '128');
    assert.equal(read(path.join(cpu, 'cpu.cfs_period_us')), '100000');
    assert.equal(read(path.join(cpu, 'cpu.cfs_quota_us')), '50000');
    assert.deepEqual(
      call.procsFiles.map((f) => path.basename(f)),
      ['cgroup.procs', 'cgroup.procs', 'cgroup.procs'],
    );
    assert.equal(new Set(call.procsFiles.map((f) => path.basename(path.dirname(f)))).size, 1, 'the same group name in each hierarchy');

    assert.deepEqual(call.usage(), { oomKills: 0, pidsLimitHit: false, cpuThrottled: false });
    fs.writeFileSync(path.join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n');
    fs.writeFileSync(path.join(path.dirname(call.procsFiles[1]!), 'pids.events'), 'max 17\n');
    fs.writeFileSync(path.join(cpu, 'cpu.stat'), 'nr_periods 40\nnr_throttled 12\nthrottled_time 99\n');
    assert.deepEqual(call.usage(), { oomKills: 3, pidsLimitHit: true, cpuThrottled: true });
  });

  test('controllers sharing a hierarchy (cpu,cpuacct with memory) share the group dir', () => {
    const shared = dir('shared');
    const cgroups = openV1({ memory: shared, pids: dir('pids'), cpu: shared }, { memoryBytes: GIB, pids: 10 });
    assert.equal(cgroups.parentDirs.length, 2);
    assert.equal(cgroups.createCall({ memoryBytes: GIB, pids: 10, cpus: 1 }).procsFiles.length, 2);
  });

  test('a call group that cannot be made leaves nothing behind', () => {
    const own = { memory: dir('memory'), pids: dir('pids'), cpu: dir('cpu') };
    const cgroups = openV1(own, { memoryBytes: GIB, pids: 10 });
    const pidsParent = only(own.pids, 'durable-agents-sandbox-');
    fs.rmSync(pidsParent, { recursive: true });
    fs.writeFileSync(pidsParent, 'not a dir');
    assert.throws(() => cgroups.createCall({ memoryBytes: GIB, pids: 10, cpus: 1 }), /ENOTDIR/);
    assert.deepEqual(
      fs.readdirSync(only(own.memory, 'durable-agents-sandbox-')).filter((n) => n.startsWith('call-')),
      [],
    );
  });

  test('opening removes the empty groups of workers that are gone, and keeps those of running ones', () => {
    const own = { memory: dir('memory'), pids: dir('pids'), cpu: dir('cpu') };
    dir('memory', `durable-agents-sandbox-${DEAD_PID}-0a0a0a0a`, 'call-x');
    dir('memory', `durable-agents-sandbox-${process.pid}-0b0b0b0b`);
    dir('memory', 'something-else');
    openV1(own, { memoryBytes: GIB, pids: 10 });
    const left = fs.readdirSync(own.memory).sort();
    assert.equal(left.length, 3);
    assert.ok(!left.includes(`durable-agents-sandbox-${DEAD_PID}-0a0a0a0a`));
    assert.ok(left.includes(`durable-agents-sandbox-${process.pid}-0b0b0b0b`));
    assert.ok(left.includes('something-else'));
  });
});

describe('cgroup v2', () => {
  const group = (controllers: string) => {
    const own = dir('unified', 'system.slice', 'worker.service');
    fs.writeFileSync(path.join(own, 'cgroup.controllers'), `${controllers}\n`);
    return own;
  };

  test('hands memory, pids and cpu down to its parent group, and writes every limit of a call', () => {
    const own = group('cpuset cpu io memory hugetlb pids rdma misc');
    const cgroups = openV2(own, { memoryBytes: 4 * GIB, pids: 512 });
    assert.equal(read(path.join(own, 'cgroup.subtree_control')), '+memory +pids +cpu');
    const parent = only(own, 'durable-agents-sandbox-');
    assert.equal(read(path.join(parent, 'cgroup.subtree_control')), '+memory +pids +cpu');
    assert.equal(read(path.join(parent, 'memory.max')), String(4 * GIB));
    assert.equal(read(path.join(parent, 'pids.max')), '512');
    assert.equal(fs.existsSync(path.join(parent, 'cpu.max')), false, 'no CPU bound on the parent');
    assert.deepEqual(cgroups.parentDirs, [parent]);
    assert.equal(cgroups.version, 2);

    const call = cgroups.createCall({ memoryBytes: GIB, pids: 128, cpus: 1.5 });
    const g = only(parent, 'call-');
    assert.equal(read(path.join(g, 'memory.max')), String(GIB));
    assert.equal(read(path.join(g, 'pids.max')), '128');
    assert.equal(read(path.join(g, 'cpu.max')), '150000 100000');
    assert.deepEqual(call.procsFiles, [path.join(g, 'cgroup.procs')]);

    assert.deepEqual(call.usage(), { oomKills: 0, pidsLimitHit: false, cpuThrottled: false });
    fs.writeFileSync(path.join(g, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n');
    fs.writeFileSync(path.join(g, 'pids.events'), 'max 1\n');
    fs.writeFileSync(path.join(g, 'cpu.stat'), 'usage_usec 500\nnr_periods 3\nnr_throttled 0\n');
    assert.deepEqual(call.usage(), { oomKills: 2, pidsLimitHit: true, cpuThrottled: false });
  });

  test('refuses a group that cannot hand down memory, pids and cpu, naming what is missing', () => {
    const own = group('cpu io');
    assert.throws(() => openV2(own, { memoryBytes: GIB, pids: 10 }), {
      message: `cgroup v2: the memory, pids controller(s) are not available in ${own}`,
    });
    assert.deepEqual(fs.readdirSync(own).sort(), ['cgroup.controllers'], 'nothing was made');
  });
});
