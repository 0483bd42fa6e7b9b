/**
 * One subscription per run per API process, fanned out to every SSE client of
 * that run. A feed long-polls the workflow with an Update while the run is
 * open, and reads the log with a Query once it has closed (Updates cannot
 * reach a closed workflow). Its cache holds the run's events from offset 0, so
 * any client can start at any offset. A run started here hands its feed the
 * first poll, which rode on the start (api/start-run.ts).
 *
 * Polls wait in the run without a timer and without a deadline here: the
 * process's feed id lets the run release a poll this process sent earlier
 * (a retry after an error, or a new feed for the run) when a newer one
 * arrives. Keep-alives to the clients are the stream's job (api/stream-run.ts).
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { eventsQuery, waitForEventsUpdate, type EventBatch, type RunTerminal } from '../contract/run-contract';
import { runFields, type Log } from '../common/log';
import { workflowIdFor } from '../common/run-ids';
import { RUN_CANCELLED, type CompletionEvent } from '../contract/wire';
import { countRunEnded } from './metrics';

/** How long a poll waits in runs started before timer-less polls (newer runs wait until there are events). */
export const POLL_TIMEOUT_MS = 20_000;
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
  /** A poll already sent for this feed (the one that rode on the run's start), taken before polling again. */
  private pending: Promise<EventBatch> | undefined;
  /** Whether the run was still open when this feed polled it (a replay of a closed run is not its end). */
  private sawRunning = false;

  constructor(
    private readonly handle: WorkflowHandle,
    private readonly feedId: string,
    private readonly log: Log,
    private readonly onIdle: () => void,
    firstPoll?: Promise<EventBatch>,
  ) {
    this.pending = firstPoll;
    void this.pump();
  }

  /** Takes over a poll sent on this feed's behalf; it released the feed's own waiting one. */
  adopt(poll: Promise<EventBatch>): void {
    this.pending = poll;
  }

  get finished(): boolean {
    return this.terminal !== undefined || this.missing;
  }

  /** Calls `listener` whenever events arrive or the run ends; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.stop();
        this.events.length = 0; // its poll may wait on in the run; nothing reads these any more
      }
    };
  }

  /** No more polls; the events stay for the clients still reading them (a slow one may be far behind a finished run). */
  private stop(): void {
    this.stopped = true;
    this.onIdle();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private append(batch: EventBatch): void {
    if (!this.closed) this.sawRunning = true;
    // Batches are contiguous by construction; anything else is stale and ignored.
    if (batch.from === this.events.length) this.events.push(...batch.events);
    if (batch.terminal && batch.from + batch.events.length >= this.events.length) {
      if (!this.terminal && this.sawRunning) countRunEnded(batch.terminal);
      this.terminal = batch.terminal;
    }
    if (batch.events.length || batch.terminal) this.notify();
  }

  private async pump(): Promise<void> {
    while (!this.stopped && !this.finished) {
      try {
        const batch = await this.next();
        this.append(batch);
        // Released because too many polls wait in the run: give the others a moment.
        if (batch.superseded && batch.events.length === 0 && !this.pending) await sleep(RETRY_DELAY_MS);
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
      const pending = this.pending;
      this.pending = undefined;
      try {
        return await (pending ??
          this.handle.executeUpdate(waitForEventsUpdate, { args: [{ after, timeoutMs: POLL_TIMEOUT_MS, feed: this.feedId }] }));
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
  /** This process's feed id, sent with every poll. */
  readonly feedId = `api-${randomUUID()}`;
  private readonly feeds = new Map<string, RunFeed>();

  constructor(
    private readonly client: Client,
    private readonly log: Log,
  ) {}

  /** The run's feed; `firstPoll` is a poll already sent with this feed's id (by the run's start). */
  get(runId: string, firstPoll?: Promise<EventBatch>): RunFeed {
    const existing = this.feeds.get(runId);
    if (existing) {
      if (firstPoll) existing.adopt(firstPoll);
      return existing;
    }
    const handle = this.client.workflow.getHandle(workflowIdFor(runId));
    const feed: RunFeed = new RunFeed(
      handle,
      this.feedId,
      this.log.child(runFields(runId)),
      () => {
        if (this.feeds.get(runId) === feed) this.feeds.delete(runId);
      },
      firstPoll,
    );
    this.feeds.set(runId, feed);
    return feed;
  }
}
