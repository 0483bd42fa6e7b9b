/**
 * What the cgroup v1 and v2 backends (./cgroup-v1, ./cgroup-v2) share: the
 * shapes of a worker's parent group and a call's group, and the file
 * operations on cgroupfs, each failing with the file it was about.
 *
 * Layout: the worker makes one parent group, `durable-agents-sandbox-<pid>-<id>`,
 * inside the cgroup it runs in (so every limit above it, a container's or a
 * systemd unit's, still applies), and one group per call inside that. A
 * parent left behind by a worker that died is removed by the next worker that
 * opens the same groups (its call groups are empty by then: bwrap's
 * --die-with-parent ends every sandbox with its worker).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CallLimits {
  memoryBytes: number;
  pids: number;
  /** CPU time per wall-clock time: 1 is one CPU. */
  cpus: number;
}

/** What the call ran into, read from its group before it is removed. */
export interface CallUsage {
  /** Processes the kernel killed at the memory limit. */
  oomKills: number;
  /** Whether a fork or clone failed at the pids limit. */
  pidsLimitHit: boolean;
  /** Whether the CPU limit held the call back at least once. */
  cpuThrottled: boolean;
}

export interface CallGroup {
  /** The `cgroup.procs` files a process writes its pid into to join the call, one per hierarchy. */
  readonly procsFiles: string[];
  usage(): CallUsage;
  /** Kills whatever is left in the group, then removes it. */
  remove(): Promise<void>;
}

export interface WorkerCgroups {
  readonly version: 1 | 2;
  /** The worker's parent group, one dir per hierarchy. */
  readonly parentDirs: string[];
  /** A new call group with every limit written, or an error (and no group left behind). */
  createCall(limits: CallLimits): CallGroup;
  /** Removes the parent group (after every call group is gone). */
  close(): Promise<void>;
}

/**
 * Bounds on all of a worker's calls together, written on its parent group.
 * No CPU bound: cgroup v1 refuses a call group more CPU than its parent has,
 * and the Go cache warm-up gets more than one call's share.
 */
export type ParentLimits = Omit<CallLimits, 'cpus'>;

export const CPU_PERIOD_USEC = 100_000;
export const PARENT_PREFIX = 'durable-agents-sandbox-';

/** Unique per sandbox: the pid says whose it is, the id keeps two sandboxes of one process (tests) apart. */
export const parentName = (): string => `${PARENT_PREFIX}${process.pid}-${randomUUID().slice(0, 8)}`;
export const callName = (): string => `call-${randomUUID()}`;

export function writeValue(file: string, value: string | number): void {
  try {
    fs.writeFileSync(file, String(value));
  } catch (err) {
    throw new Error(`cannot write '${value}' to ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The `key value` lines of memory.events, pids.events, cpu.stat or memory.oom_control; empty if the file is missing. */
export function readKeyed(file: string): Map<string, number> {
  const values = new Map<string, number>();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return values;
  }
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) values.set(key, Number(value));
  }
  return values;
}

/** Makes each dir; if one fails, removes those made and rethrows. */
export function makeDirs(dirs: string[]): void {
  const made: string[] = [];
  try {
    for (const dir of dirs) {
      fs.mkdirSync(dir);
      made.push(dir);
    }
  } catch (err) {
    for (const dir of made) fs.rmdirSync(dir);
    throw err;
  }
}

/** Runs `write`; if it throws, removes `dirs` (a group without all its limits is never used) and rethrows. */
export function writeOrRemove(dirs: string[], write: () => void): void {
  try {
    write();
  } catch (err) {
    for (const dir of dirs) fs.rmdirSync(dir);
    throw err;
  }
}

const KILL_ROUNDS = 200;
const RETRY_MS = 10;

/**
 * SIGKILLs every process listed in the groups until none is left (a process
 * may fork while we read the list; pids.max bounds how long that goes on).
 */
export async function killAll(procsFiles: string[]): Promise<void> {
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const pids = procsFiles.flatMap((file) => readPids(file));
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(RETRY_MS);
  }
  throw new Error(`processes are still running in ${procsFiles.join(', ')} after ${KILL_ROUNDS} rounds of SIGKILL`);
}

/** rmdir fails with EBUSY until the last killed task has left, which takes milliseconds. */
export async function removeWhenEmpty(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= KILL_ROUNDS) throw err;
      await sleep(RETRY_MS);
    }
  }
}

function readPids(procsFile: string): number[] {
  try {
    return fs.readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Removes the empty parent groups (and their empty call groups) of workers that are no longer running. */
export function removeStaleParents(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry.startsWith(PARENT_PREFIX) ? entry.slice(PARENT_PREFIX.length).split('-')[0] : NaN);
    if (!Number.isInteger(pid) || pid === process.pid || isRunning(pid)) continue;
    const parent = path.join(dir, entry);
    try {
      for (const call of fs.readdirSync(parent, { withFileTypes: true })) {
        if (call.isDirectory()) fs.rmdirSync(path.join(parent, call.name));
      }
      fs.rmdirSync(parent);
    } catch {
      // still in use or not ours to remove: leave it
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
