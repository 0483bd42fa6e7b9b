/**
 * What the model reads about the sandbox's limits: which one a call ran
 * into, and how long it waited for a slot. Each note names the setting that
 * changes the limit.
 */
import type { SandboxLimits } from '../../common/config';

/** Limits that can stop (part of) a call; the ttl is reported by the caller as a time-out. */
export type LimitHit = 'memory' | 'pids' | 'tmp';

export interface LimitFacts {
  hit: LimitHit[];
  /** The ttl ended the call while the CPU limit was holding it back. */
  cpuBoundAtTtl: boolean;
  /** Whether the call had to wait for a slot, and how long (ms). */
  queued: boolean;
  queuedMs: number;
}

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function limitNotes(facts: LimitFacts, limits: SandboxLimits): string[] {
  const notes: string[] = [];
  if (facts.hit.includes('memory')) {
    notes.push(
      `[memory limit: the call's processes together may use ${mib(limits.memoryBytes)} MiB, /tmp included (SANDBOX_MEMORY_MB); a process that went past it was killed]`,
    );
  }
  if (facts.hit.includes('pids')) {
    notes.push(`[process limit: the call may run ${limits.pids} processes and threads at once (SANDBOX_PIDS); starting more failed]`);
  }
  if (facts.hit.includes('tmp')) notes.push(`[/tmp is full: it holds at most ${mib(limits.tmpBytes)} MiB (SANDBOX_TMP_MB)]`);
  if (facts.cpuBoundAtTtl)
    notes.push(`[CPU limit: the call gets ${plural(limits.cpus, 'CPU')} (SANDBOX_CPUS) and was using all of it when the ttl ended it]`);
  if (facts.queued) {
    notes.push(
      `[waited ${(facts.queuedMs / 1000).toFixed(1)}s for a free sandbox slot: this worker runs ${plural(limits.maxConcurrent, 'sandboxed call')} at once ` +
        '(SANDBOX_MAX_CONCURRENT); the wait counted against the ttl]',
    );
  }
  return notes;
}

/** Why a call that waited its whole ttl for a slot did not run. */
export function queueTimeoutMessage(ttlSeconds: number, limits: SandboxLimits): string {
  return (
    `timed out after ${ttlSeconds}s waiting for a free sandbox slot: this worker runs ${plural(limits.maxConcurrent, 'sandboxed call')} at once ` +
    '(SANDBOX_MAX_CONCURRENT) and none finished in time; nothing was run'
  );
}
