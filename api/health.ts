import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TASK_QUEUE } from '../contract/run-contract';
import { countLivePollers } from './pollers';

export interface Health {
  ok: boolean;
  temporal: 'reachable' | 'unreachable';
  workers: number;
  /** API processes serving the namespace (api/api-presence.ts). */
  api_processes: number;
  /** This process's open event streams, and the bytes they hold that their clients have not read yet. */
  streams: { open: number; buffered_bytes: number };
  reason?: string;
}

/**
 * 200 needs Temporal reachable and a worker polling our task queue
 * (docs/api.md#part-b-durable-run-extensions). Only `ok` is for everyone:
 * the rest (Temporal's own error text among it) is for authenticated callers.
 */
export async function healthOf(client: Client, namespace: string, here: Pick<Health, 'api_processes' | 'streams'>): Promise<Health> {
  try {
    const { pollers } = await client.connection.withDeadline(Date.now() + 3_000, () =>
      client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    const workers = countLivePollers(pollers);
    const reachable = { temporal: 'reachable', workers, ...here } as const;
    if (workers === 0) return { ok: false, ...reachable, reason: `no worker is polling task queue '${TASK_QUEUE}'` };
    return { ok: true, ...reachable };
  } catch (err) {
    return { ok: false, temporal: 'unreachable', workers: 0, ...here, reason: `cannot reach Temporal: ${(err as Error).message}` };
  }
}
