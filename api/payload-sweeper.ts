/**
 * Drops the claim-checked payloads (common/payload-store.ts) that no retained
 * run can still reference. A run references only payloads written while it
 * was open, and each payload is written again at every use; so a payload
 * written before the oldest start of every run Temporal still keeps (running,
 * or closed within the namespace's retention) is referenced by none. The
 * oldest start is asked of visibility: runs started before `now - retention`
 * that are still kept are few (long runs, or runs that ended lately). A grace
 * period covers clock skew between hosts and the moment a run's input is
 * stored just before its start.
 */
import type { Client } from '@temporalio/client';
import { dropPayloadsWrittenBefore } from '../common/payload-store';
import { TASK_QUEUE } from '../contract/run-contract';

export const SWEEP_GRACE_MS = 60 * 60_000;

/** Before this moment no retained run had started yet, minus the grace; payloads written earlier can go. */
export async function payloadHorizon(client: Client, namespace: string, now = new Date()): Promise<Date> {
  const { config } = await client.workflowService.describeNamespace({ namespace });
  const retentionMs = Number(config?.workflowExecutionRetentionTtl?.seconds ?? 0) * 1000;
  let oldest = now.getTime() - retentionMs;
  const query = `TaskQueue = '${TASK_QUEUE}' AND StartTime < '${new Date(oldest).toISOString()}'`;
  for await (const run of client.workflow.list({ query })) oldest = Math.min(oldest, run.startTime.getTime());
  return new Date(oldest - SWEEP_GRACE_MS);
}

export async function sweepPayloads(client: Client, namespace: string, dir: string, now = new Date()): Promise<number> {
  return dropPayloadsWrittenBefore(dir, await payloadHorizon(client, namespace, now));
}

/** Sweeps at start and then every `intervalMs`; returns the function that stops it. */
export function startPayloadSweeper(
  client: Client,
  namespace: string,
  dir: string,
  intervalMs: number,
  log: { info(msg: string, meta?: Record<string, unknown>): void; warn(msg: string, meta?: Record<string, unknown>): void },
): () => void {
  const sweep = () =>
    sweepPayloads(client, namespace, dir).then(
      (dropped) => dropped > 0 && log.info('payload store swept', { dropped }),
      (err: unknown) => log.warn('payload sweep failed; trying again later', { error: String(err) }),
    );
  const first = setTimeout(() => void sweep(), 1_000);
  const timer = setInterval(() => void sweep(), intervalMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
