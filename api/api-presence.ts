/**
 * How many API processes serve the namespace, so that each takes its share of
 * a key's request rate (api/quotas.ts). Every API process long-polls a task
 * queue of its own (`durable-agents-api`) on which nothing is ever scheduled:
 * Temporal then lists the API processes as that queue's pollers, with no
 * store but the one they all share already. A process that died drops out of
 * the count after at most 70 s; until then the others take a smaller share.
 */
import * as os from 'node:os';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TASK_QUEUE } from '../contract/run-contract';
import { countLivePollers } from './pollers';

export const API_TASK_QUEUE = `${TASK_QUEUE}-api`;
const REFRESH_MS = 10_000;
const RETRY_MS = 2_000;
const POLL_DEADLINE_MS = 70_000;

export class ApiPresence {
  private known = 1;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Client,
    private readonly namespace: string,
  ) {}

  /** API processes alive, this one included (1 until Temporal says more). */
  get processes(): number {
    return this.known;
  }

  start(): void {
    void this.poll();
    // The first count right after this process's own poll has reached Temporal.
    this.timer = setTimeout(() => void this.refresh(), 500);
  }

  stop(): void {
    this.abort.abort();
    clearTimeout(this.timer);
  }

  /** Counts the live pollers of the API queue, now and every REFRESH_MS. */
  async refresh(): Promise<number> {
    clearTimeout(this.timer);
    try {
      const { pollers } = await this.client.connection.withDeadline(Date.now() + 5_000, () =>
        this.client.workflowService.describeTaskQueue({
          namespace: this.namespace,
          taskQueue: { name: API_TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        }),
      );
      this.known = Math.max(1, countLivePollers(pollers));
    } catch {
      // Temporal unreachable: keep the last count.
    }
    if (!this.abort.signal.aborted) this.timer = setTimeout(() => void this.refresh(), REFRESH_MS);
    return this.known;
  }

  /** Long-polls the API queue for as long as the process lives: this is what makes it count. */
  private async poll(): Promise<void> {
    const identity = `${process.pid}@${os.hostname()}:api`;
    while (!this.abort.signal.aborted) {
      try {
        // Temporal needs a deadline on a long poll, and answers empty after about a minute.
        await this.client.connection.withAbortSignal(this.abort.signal, () =>
          this.client.connection.withDeadline(Date.now() + POLL_DEADLINE_MS, () =>
            this.client.workflowService.pollActivityTaskQueue({
              namespace: this.namespace,
              taskQueue: { name: API_TASK_QUEUE, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
              identity,
            }),
          ),
        );
      } catch {
        if (!this.abort.signal.aborted) await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }
}
