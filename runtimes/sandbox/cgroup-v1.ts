/**
 * Per-call groups on cgroup v1 (one hierarchy per controller, as on this
 * project's development machine and older hosts): the same group name in the
 * memory, pids and cpu hierarchies.
 *
 * - memory.limit_in_bytes, then memory.memsw.limit_in_bytes (memory + swap,
 *   where swap is accounted) to the same value: no swapping past the limit.
 * - pids.max; cpu.cfs_quota_us per cpu.cfs_period_us.
 * - Which limit was hit: `oom_kill` in memory.oom_control (memory.failcnt
 *   stays 0 even after OOM kills), `max` in pids.events, `nr_throttled` in
 *   cpu.stat.
 * - v1 has no cgroup.kill: removal SIGKILLs the listed processes until none
 *   is left, then removes the dirs.
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

/** A group's dir in each hierarchy (the same dir where controllers share a hierarchy). */
export interface V1Dirs {
  memory: string;
  pids: string;
  cpu: string;
}

const unique = (dirs: V1Dirs): string[] => [...new Set([dirs.memory, dirs.pids, dirs.cpu])];
const inside = (dirs: V1Dirs, name: string): V1Dirs => ({
  memory: path.join(dirs.memory, name),
  pids: path.join(dirs.pids, name),
  cpu: path.join(dirs.cpu, name),
});

/** Opens the worker's parent group inside `own`, the cgroups the worker runs in. */
export function openV1(own: V1Dirs, parentLimits: ParentLimits): WorkerCgroups {
  for (const dir of unique(own)) removeStaleParents(dir);
  const parent = inside(own, parentName());
  const parentDirs = unique(parent);
  for (const dir of parentDirs) fs.mkdirSync(dir, { recursive: true });
  writeOrRemove(parentDirs, () => writeLimits(parent, parentLimits));
  return {
    version: 1,
    parentDirs,
    createCall(limits) {
      const group = inside(parent, callName());
      const dirs = unique(group);
      makeDirs(dirs);
      writeOrRemove(dirs, () => writeLimits(group, limits));
      return callGroup(group);
    },
    async close() {
      for (const dir of parentDirs) await removeWhenEmpty(dir);
    },
  };
}

function writeLimits(group: V1Dirs, limits: ParentLimits & Partial<CallLimits>): void {
  writeValue(path.join(group.memory, 'memory.limit_in_bytes'), limits.memoryBytes);
  const memsw = path.join(group.memory, 'memory.memsw.limit_in_bytes');
  if (fs.existsSync(memsw)) writeValue(memsw, limits.memoryBytes);
  writeValue(path.join(group.pids, 'pids.max'), limits.pids);
  if (limits.cpus === undefined) return;
  writeValue(path.join(group.cpu, 'cpu.cfs_period_us'), CPU_PERIOD_USEC);
  writeValue(path.join(group.cpu, 'cpu.cfs_quota_us'), Math.round(limits.cpus * CPU_PERIOD_USEC));
}

function callGroup(group: V1Dirs): CallGroup {
  const dirs = unique(group);
  const procsFiles = dirs.map((dir) => path.join(dir, 'cgroup.procs'));
  return {
    procsFiles,
    usage: () => ({
      oomKills: readKeyed(path.join(group.memory, 'memory.oom_control')).get('oom_kill') ?? 0,
      pidsLimitHit: (readKeyed(path.join(group.pids, 'pids.events')).get('max') ?? 0) > 0,
      cpuThrottled: (readKeyed(path.join(group.cpu, 'cpu.stat')).get('nr_throttled') ?? 0) > 0,
    }),
    async remove() {
      await killAll(procsFiles);
      for (const dir of dirs) await removeWhenEmpty(dir);
    },
  };
}
