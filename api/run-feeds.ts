/**
 * One subscription per run per API process, fanned out to every SSE client of
 * that run. A feed long-polls the workflow with an Update while the run is
 * open, and reads the log with a Query once it has closed (Updates cannot
 * reach a closed workflow). Its cache holds the run's events from offset 0, so
 * any client can start at any offset.
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { eventsQuery, waitForEventsUpdate, type EventBatch, type RunTerminal } from '../contract/run-contract';
import { runFields, type Log } from '../common/log';
import { workflowIdFor } from '../common/run-ids';
import { RUN_CANCELLED, type CompletionEvent } from '../contract/wire';

const POLL_TIMEOUT_MS = 20_000;
const RETRY_DELAY_MS = 1_000;
/** While a run continues-as-new, the next poll waits this long for the new execution. */
const HANDOVER_DELAY_MS = 100;

/** A run that continued-as-new is still going, in a newer execution. */
const LIVE_STATUSES = new Set(['RUNNING', 'CONTINUED_AS_NEW']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RunFeed {
  readonly events: CompletionEvent[] = [];
  terminal: RunTerminal | undefined;
  /** Set when the run does not exist. */
  missing = false;
  private readonly listeners = new Set<() => void>();
  private stopped = false;
  private closed = false;

  constructor(
    private readonly handle: WorkflowHandle,
    private readonly log: Log,
    private readonly onIdle: () => void,
  ) {
    void this.pump();
  }

  get finished(): boolean {
    return this.terminal !== undefined || this.missing;
  }

  /** Calls `listener` whenever events arrive or the run ends; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  private stop(): void {
    this.stopped = true;
    this.onIdle();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private append(batch: EventBatch): void {
    // Batches are contiguous by construction; anything else is stale and ignored.
    if (batch.from === this.events.length) this.events.push(...batch.events);
    if (batch.terminal && batch.from + batch.events.length >= this.events.length) this.terminal = batch.terminal;
    if (batch.events.length || batch.terminal) this.notify();
  }

  private async pump(): Promise<void> {
    while (!this.stopped && !this.finished) {
      try {
        this.append(await this.next());
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          this.missing = true;
          this.notify();
          break;
        }
        this.log.warn('run feed: poll failed, retrying', { error: String(err) });
        await sleep(RETRY_DELAY_MS);
      }
    }
    if (!this.stopped) this.stop();
  }

  private async next(): Promise<EventBatch> {
    const after = this.events.length - 1;
    const batch = await this.fromLatestExecution(after);
    if (batch.continuing) await sleep(HANDOVER_DELAY_MS);
    return batch.earlier ? this.fromEarlierExecutions(batch.earlier, after) : batch;
  }

  private async fromLatestExecution(after: number): Promise<EventBatch> {
    if (!this.closed) {
      try {
        return await this.handle.executeUpdate(waitForEventsUpdate, { args: [{ after, timeoutMs: POLL_TIMEOUT_MS }] });
      } catch (err) {
        // Updates cannot reach a closed run; anything else (Temporal down, a hand-over, ...) is retried.
        if (await this.stillRunning()) throw err;
        this.closed = true;
      }
    }
    const batch = await this.handle.query(eventsQuery, { after });
    if (batch.events.length === 0 && !batch.terminal && !batch.earlier) {
      // Closed without a terminal record: terminated or timed out from outside the loop.
      const { status } = await this.handle.describe();
      if (LIVE_STATUSES.has(status.name)) {
        this.closed = false;
        return batch;
      }
      return { from: after + 1, events: [], terminal: terminalForClosedStatus(status.name) };
    }
    return batch;
  }

  private async stillRunning(): Promise<boolean> {
    const { status } = await this.handle.describe();
    return LIVE_STATUSES.has(status.name);
  }

  /** Events logged before a continue-as-new: ask the closed executions, newest to oldest. */
  private async fromEarlierExecutions(runId: string, after: number): Promise<EventBatch> {
    for (let earlier: string | undefined = runId; ;) {
      const batch: EventBatch = await this.handle.client.getHandle(this.handle.workflowId, earlier).query(eventsQuery, { after });
      if (!batch.earlier) return batch;
      earlier = batch.earlier;
    }
  }
}

function terminalForClosedStatus(status: string): RunTerminal {
  if (status === 'CANCELLED') return { status: 'cancelled', error: RUN_CANCELLED };
  const how = status.toLowerCase().replace('_', ' ');
  return { status: 'failed', error: { code: 500, type: 'server_error', message: `the run ended as ${how} outside the agent loop` } };
}

/** The process-wide table of live feeds. */
export class RunFeeds {
  private readonly feeds = new Map<string, RunFeed>();

  constructor(
    private readonly client: Client,
    private readonly log: Log,
  ) {}

  get(runId: string): RunFeed {
    let feed = this.feeds.get(runId);
    if (!feed) {
      const handle = this.client.workflow.getHandle(workflowIdFor(runId));
      feed = new RunFeed(handle, this.log.child(runFields(runId)), () => {
        if (this.feeds.get(runId) === feed) this.feeds.delete(runId);
      });
      this.feeds.set(runId, feed);
    }
    return feed;
  }
}
