/**
 * Per-call groups on cgroup v2 (one unified hierarchy, as on most current
 * hosts and in Docker with `cgroup: private`).
 *
 * - The worker's group hands memory, pids and cpu down through
 *   cgroup.subtree_control. v2 allows that only in a group without processes
 *   of its own ("no internal processes"): when the kernel says EBUSY, every
 *   process of the worker's group first moves into a leaf, `<group>/worker`.
 * - memory.max, memory.swap.max = 0 (no swapping past the limit), pids.max,
 *   cpu.max (`quota period`).
 * - Which limit was hit: `oom_kill` in memory.events, `max` in pids.events,
 *   `nr_throttled` in cpu.stat.
 * - Removal: cgroup.kill (Linux 5.14+; SIGKILL to every process, fork-safe),
 *   or SIGKILL to the listed processes on older kernels, then rmdir.
 * - A worker that does not run as root needs its group delegated to it (the
 *   dir, cgroup.procs, cgroup.subtree_control and cgroup.threads owned by its
 *   user, as systemd's Delegate= does).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  callName,
  CPU_PERIOD_USEC,
  killAll,
  makeDirs,
  parentName,
  readKeyed,
  removeStaleParents,
  removeWhenEmpty,
  writeOrRemove,
  writeValue,
  type CallGroup,
  type CallLimits,
  type ParentLimits,
  type WorkerCgroups,
} from './cgroup-files';

export const V2_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;
const WORKER_LEAF = 'worker';

/** The controllers of V2_CONTROLLERS that `group` cannot hand down (read from its cgroup.controllers). */
export function missingV2Controllers(group: string): string[] {
  const available = fs.readFileSync(path.join(group, 'cgroup.controllers'), 'utf8').split(/\s+/);
  return V2_CONTROLLERS.filter((controller) => !available.includes(controller));
}

/** Opens the worker's parent group inside `own`, the v2 group the worker runs in. */
export function openV2(own: string, parentLimits: ParentLimits): WorkerCgroups {
  const missing = missingV2Controllers(own);
  if (missing.length > 0) throw new Error(`cgroup v2: the ${missing.join(', ')} controller(s) are not available in ${own}`);
  removeStaleParents(own);
  delegate(own);
  const parent = path.join(own, parentName());
  fs.mkdirSync(parent, { recursive: true });
  writeOrRemove([parent], () => {
    writeLimits(parent, parentLimits);
    enableControllers(parent);
  });
  return {
    version: 2,
    parentDirs: [parent],
    createCall(limits) {
      const group = path.join(parent, callName());
      makeDirs([group]);
      writeOrRemove([group], () => writeLimits(group, limits));
      return callGroup(group);
    },
    close: () => removeWhenEmpty(parent),
  };
}

const enableControllers = (group: string): void =>
  writeValue(path.join(group, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' '));

/** Enables the controllers below `own`, first moving its processes into a leaf if v2 insists. */
function delegate(own: string): void {
  try {
    enableControllers(own);
    return;
  } catch (err) {
    if ((err as { cause?: NodeJS.ErrnoException }).cause?.code !== 'EBUSY') throw err;
  }
  const leaf = path.join(own, WORKER_LEAF);
  fs.mkdirSync(leaf, { recursive: true });
  const procs = fs.readFileSync(path.join(own, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  for (const pid of procs) {
    try {
      writeValue(path.join(leaf, 'cgroup.procs'), pid);
    } catch {
      // exited meanwhile
    }
  }
  enableControllers(own);
}

function writeLimits(group: string, limits: ParentLimits & Partial<CallLimits>): void {
  writeValue(path.join(group, 'memory.max'), limits.memoryBytes);
  const swap = path.join(group, 'memory.swap.max');
  if (fs.existsSync(swap)) writeValue(swap, 0);
  writeValue(path.join(group, 'pids.max'), limits.pids);
  if (limits.cpus !== undefined) writeValue(path.join(group, 'cpu.max'), `${Math.round(limits.cpus * CPU_PERIOD_USEC)} ${CPU_PERIOD_USEC}`);
}

/** A call's v2 group (exported for the tests of removal on a real v2 hierarchy). */
export function callGroup(group: string): CallGroup {
  const procsFiles = [path.join(group, 'cgroup.procs')];
  return {
    procsFiles,
    usage: () => ({
      oomKills: readKeyed(path.join(group, 'memory.events')).get('oom_kill') ?? 0,
      pidsLimitHit: (readKeyed(path.join(group, 'pids.events')).get('max') ?? 0) > 0,
      cpuThrottled: (readKeyed(path.join(group, 'cpu.stat')).get('nr_throttled') ?? 0) > 0,
    }),
    async remove() {
      const kill = path.join(group, 'cgroup.kill');
      if (fs.existsSync(kill)) writeValue(kill, 1);
      await killAll(procsFiles); // a no-op after cgroup.kill; the only way before Linux 5.14
      await removeWhenEmpty(group);
    },
  };
}
