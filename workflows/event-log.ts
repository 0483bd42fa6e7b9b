/**
 * The run's offset-addressed event log, as held by one workflow execution.
 * After continue-as-new an execution holds only the events from `base` on;
 * earlier ones are read from the execution it continued from (`earlier`).
 */
import type { EventBatch, RunTerminal } from '../contract/run-contract';
import type { CompletionEvent } from '../contract/wire';

/** Keeps one answer well under Temporal's payload and gRPC limits. */
const MAX_BATCH_CHARS = 256 * 1024;

export class EventLog {
  private readonly events: CompletionEvent[] = [];
  terminal: RunTerminal | undefined;

  constructor(
    readonly base: number,
    /** Temporal run id of the execution holding offsets below `base`. */
    private readonly earlier: string | undefined,
  ) {}

  /** Offset the next event gets = events in the whole run so far. */
  get length(): number {
    return this.base + this.events.length;
  }

  push(event: CompletionEvent): void {
    this.events.push(event);
  }

  hasAfter(after: number): boolean {
    return this.length > after + 1;
  }

  /** Events after offset `after`, as many as fit in one answer. */
  batchAfter(after: number, limit = Number.MAX_SAFE_INTEGER): EventBatch {
    const from = Math.max(after + 1, this.base);
    if (after + 1 < this.base) return { from, events: [], earlier: this.earlier };
    const events: CompletionEvent[] = [];
    let chars = 0;
    for (let i = from - this.base; i < this.events.length && events.length < limit; i++) {
      const event = this.events[i];
      if (!event) break;
      chars += JSON.stringify(event).length;
      if (events.length > 0 && chars > MAX_BATCH_CHARS) break;
      events.push(event);
    }
    const complete = from + events.length >= this.length;
    return { from, events, terminal: complete ? this.terminal : undefined };
  }
}
