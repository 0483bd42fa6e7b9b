/**
 * Finds where the worker can make per-call cgroups: cgroup v2 when the
 * unified hierarchy has the memory, pids and cpu controllers for the worker's
 * group, else cgroup v1 when each of them has its own mounted hierarchy. The
 * worker's own groups are read from /proc/self/cgroup, the mounts from
 * /proc/self/mounts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParentLimits, WorkerCgroups } from './cgroup-files';
import { openV1 } from './cgroup-v1';
import { missingV2Controllers, openV2 } from './cgroup-v2';

export type { CallGroup, CallLimits, CallUsage, WorkerCgroups } from './cgroup-files';

interface Mount {
  dir: string;
  type: string;
  options: string[];
}

/** Opens the worker's parent group, or throws saying what is missing or not allowed. */
export function openWorkerCgroups(parentLimits: ParentLimits): WorkerCgroups {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').filter(Boolean).map(parseMount);
  const own = ownGroups(fs.readFileSync('/proc/self/cgroup', 'utf8'));
  const unified = mounts.find((m) => m.type === 'cgroup2');
  const ownV2 = own.get('');
  const problems: string[] = [];
  if (unified && ownV2 !== undefined) {
    const group = path.join(unified.dir, ownV2);
    const missing = missingV2Controllers(group);
    if (missing.length === 0) return openV2(group, parentLimits);
    problems.push(`cgroup v2 (${group}) lacks the ${missing.join(', ')} controller(s)`);
  }
  const v1Dir = (controller: string): string | undefined => {
    const mount = mounts.find((m) => m.type === 'cgroup' && m.options.includes(controller));
    const ownPath = own.get(controller);
    return mount && ownPath !== undefined ? path.join(mount.dir, ownPath) : undefined;
  };
  const memory = v1Dir('memory');
  const pids = v1Dir('pids');
  const cpu = v1Dir('cpu');
  if (memory && pids && cpu) return openV1({ memory, pids, cpu }, parentLimits);
  const missingV1 = Object.entries({ memory, pids, cpu }).filter(([, dir]) => !dir);
  problems.push(`cgroup v1 has no ${missingV1.map(([name]) => name).join(', ')} hierarchy`);
  throw new Error(`no cgroup hierarchy offers the memory, pids and cpu controllers: ${problems.join('; ')}`);
}

/** A /proc/self/mounts line; spaces in paths are written as \040. */
function parseMount(line: string): Mount {
  const [, dir = '', type = '', options = ''] = line.split(' ');
  return { dir: dir.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))), type, options: options.split(',') };
}

/** /proc/self/cgroup: the worker's group per v1 controller, and under '' its v2 group. */
function ownGroups(text: string): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers = '', group = ''] = match;
    for (const controller of controllers.split(',')) own.set(controller, group);
  }
  return own;
}
