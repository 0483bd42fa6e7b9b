/**
 * Peak memory and CPU time of the processes under load, read from /proc
 * (Linux) every `intervalMs`. A process that dies keeps the figures of its
 * last sample. With `tree`, a process counts with its children (PostgreSQL:
 * the postmaster and one backend per connection); their RSS adds up the
 * shared buffers each of them touched, so that sum overstates the memory used.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface WatchedProcess {
  name: string;
  pid: () => number | undefined;
  tree?: boolean;
}

export interface ProcessFigures {
  name: string;
  /** The largest RSS seen (VmHWM for one process, the largest sum for a tree). */
  peakRssBytes: number;
  /** user + system CPU time over the sampled window. */
  cpuSeconds: number;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
}

/** `/proc/<pid>/status` field in bytes (e.g. VmRSS, VmHWM). */
function statusBytes(pid: number, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) * 1024 : undefined;
}

/** utime + stime (+ cutime + cstime: reaped children) of `/proc/<pid>/stat`, in seconds. */
function cpuSeconds(pid: number, withReaped: boolean): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + (withReaped ? Number(f[13]) + Number(f[14]) : 0);
  return ticks / CLOCK_TICKS;
}

const childrenOf = (pid: number): number[] => (read(`/proc/${pid}/task/${pid}/children`) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);

export class ProcessSampler {
  private readonly figures = new Map<string, { peakRssBytes: number; cpuAtStart: number; cpuNow: number }>();
  private timer: NodeJS.Timeout | undefined;
  private machineAtStart = machineTicks();

  constructor(
    private readonly watched: WatchedProcess[],
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    this.machineAtStart = machineTicks();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    for (const w of this.watched) {
      const pid = w.pid();
      if (pid === undefined) continue;
      const pids = w.tree ? [pid, ...childrenOf(pid)] : [pid];
      const rss = w.tree ? pids.reduce((sum, p) => sum + (statusBytes(p, 'VmRSS') ?? 0), 0) : (statusBytes(pid, 'VmHWM') ?? undefined);
      const cpu = w.tree ? pids.reduce((sum, p, i) => sum + (cpuSeconds(p, i === 0) ?? 0), 0) : cpuSeconds(pid, false);
      if (rss === undefined || cpu === undefined) continue; // gone: keep the last sample
      const seen = this.figures.get(w.name);
      if (!seen) this.figures.set(w.name, { peakRssBytes: rss, cpuAtStart: cpu, cpuNow: cpu });
      else {
        seen.peakRssBytes = Math.max(seen.peakRssBytes, rss);
        seen.cpuNow = cpu;
      }
    }
  }

  /** Per watched process, in the order given. */
  report(): ProcessFigures[] {
    return this.watched.map((w) => {
      const f = this.figures.get(w.name);
      return { name: w.name, peakRssBytes: f?.peakRssBytes ?? 0, cpuSeconds: f ? f.cpuNow - f.cpuAtStart : 0 };
    });
  }

  /** The share of the machine's CPU time that was busy since start(), across all cores (other users included). */
  machineBusy(): number {
    const now = machineTicks();
    const total = now.total - this.machineAtStart.total;
    return total > 0 ? (now.busy - this.machineAtStart.busy) / total : 0;
  }
}

/** The first line of /proc/stat: all cores' ticks, and the busy ones (all but idle and iowait). */
function machineTicks(): { total: number; busy: number } {
  const fields = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { total, busy: total - (fields[3] ?? 0) - (fields[4] ?? 0) };
}
