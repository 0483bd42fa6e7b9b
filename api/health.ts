import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TASK_QUEUE } from '../contract/run-contract';

const POLLER_FRESHNESS_MS = 70_000;

export interface Health {
  ok: boolean;
  temporal: 'reachable' | 'unreachable';
  workers: number;
  reason?: string;
}

/** 200 needs Temporal reachable and a worker polling our task queue (docs/api.md#part-b-durable-run-extensions). */
export async function healthOf(client: Client, namespace: string): Promise<Health> {
  try {
    const { pollers } = await client.connection.withDeadline(Date.now() + 3_000, () =>
      client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    // A poller that has not been seen for longer than one long-poll (60 s) is a dead worker.
    const recent = Date.now() - POLLER_FRESHNESS_MS;
    const workers = (pollers ?? []).filter((p) => Number(p.lastAccessTime?.seconds ?? 0) * 1000 >= recent).length;
    if (workers === 0) return { ok: false, temporal: 'reachable', workers, reason: `no worker is polling task queue '${TASK_QUEUE}'` };
    return { ok: true, temporal: 'reachable', workers };
  } catch (err) {
    return { ok: false, temporal: 'unreachable', workers: 0, reason: `cannot reach Temporal: ${(err as Error).message}` };
  }
}
