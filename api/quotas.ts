/**
 * Per-key quotas (docs/api.md#part-b-durable-run-extensions): requests per
 * minute and concurrent runs. Both answer an excess with a 429 in Heroku's
 * error shape, `Retry-After` and `x-ratelimit-limit/remaining/reset`.
 *
 * - Requests per minute are counted in each API process, in one-minute
 *   windows per key, and each process allows its share of
 *   KEY_REQUESTS_PER_MINUTE: the limit divided by the API processes alive
 *   (api/api-presence.ts). Together they never allow more than the limit,
 *   and the check costs no round trip (a shared counter would cost one per
 *   request, to every request, and to Temporal).
 * - Concurrent runs are counted where every process sees them: the key's
 *   running workflows in Temporal visibility, plus the runs this process is
 *   starting or started in the last few seconds (visibility lags a little).
 *   Far from the limit a check reuses visibility's answer of the last second
 *   and costs no round trip; a check at the limit asks afresh before it refuses.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NextFunction, Request, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { runIdForIdempotencyKey, runIdForWorkflow } from '../common/run-ids';
import { AGENT_RUN_WORKFLOW } from '../contract/run-contract';
import { rateLimited } from './api-error';
import { callerOf, type Caller } from './auth';
import { ownerClause, owns } from './ownership';
import { describeIfAny } from './runs';

const WINDOW_MS = 60_000;
/** How long a run this process started counts for it, at most, before visibility must show it. */
const VISIBILITY_LAG_MS = 5_000;
/** How long visibility's answer serves admissions that are far from the limit (a count at the limit always asks again). */
const VISIBLE_FOR_MS = 1_000;
/** What a 429 for too many runs suggests: a run may end any moment. */
const RUNS_RETRY_AFTER_SECONDS = 5;
/** How a place reserved for a run that is being started is named among run ids. */
const RESERVED = 'reserved:';

/** KEY_REQUESTS_PER_MINUTE, shared out among `processes()` API processes. Runs after authentication. */
export function requestRate(perMinute: number, processes: () => number) {
  const share = () => Math.max(1, Math.floor(perMinute / processes()));
  return rateLimit({
    windowMs: WINDOW_MS,
    limit: share,
    keyGenerator: (_req: Request, res: Response) => callerOf(res).keyId,
    standardHeaders: false,
    legacyHeaders: true, // X-RateLimit-Limit, -Remaining, -Reset (epoch seconds)
    // The key, not the address, is what is limited: a proxy in front changes nothing.
    validate: { xForwardedForHeader: false },
    handler: (_req: Request, res: Response, next: NextFunction) => {
      const n = processes();
      const spread = n > 1 ? ` (${share()} on each of the ${n} API processes)` : '';
      next(
        rateLimited(
          `too many requests: this key may make ${perMinute} requests per minute${spread}; retry after ${res.get('Retry-After')} s, or raise KEY_REQUESTS_PER_MINUTE`,
        ),
      );
    },
  });
}

/** KEY_MAX_CONCURRENT_RUNS: a key's running runs, across every API process. */
export class RunConcurrency {
  /**
   * Per key: runs this process is starting (by a token until the run id is known, then by run id) or
   * started lately (by run id), with when they started (Infinity while starting).
   */
  private readonly recent = new Map<string, Map<string, number>>();
  /** Per key: visibility's last answer to "which runs of this key are running", and when it was asked. */
  private readonly visibleRuns = new Map<string, { at: number; ids: Promise<string[]> }>();
  /** Per key: the end of the queue of admission checks. */
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(
    private readonly client: Client,
    private readonly limit: number,
    private readonly searchAttributes: () => Promise<boolean>,
  ) {}

  /**
   * Runs `start` (which starts a run and returns its id) if the key has room
   * for another run; a 429 otherwise. An Idempotency-Key that names an
   * existing run of the key is let through: attaching starts nothing
   * (and a different body is still a 409). `start` calls `starting` with the
   * run id before it asks Temporal: a run that visibility shows while its
   * start is still under way then counts once, not as both a reservation and
   * a run.
   */
  async admit<Started extends { runId: string }>(
    caller: Caller,
    idempotencyKey: string | undefined,
    start: (starting: (runId: string) => void) => Promise<Started>,
  ): Promise<Started> {
    const mine = this.recentOf(caller.keyId);
    const token = `${RESERVED}${randomUUID()}`;
    // One check at a time per key, each reserving its place: a burst cannot slip past the count together.
    await this.oneAtATime(caller.keyId, async () => {
      if ((await this.running(caller, mine)) >= this.limit && !(await this.attaches(caller, idempotencyKey))) {
        const reset = Math.ceil(Date.now() / 1000) + RUNS_RETRY_AFTER_SECONDS;
        throw rateLimited(
          `too many running runs: this key may have ${this.limit} at once (KEY_MAX_CONCURRENT_RUNS); wait for one to end or cancel one`,
          {
            'Retry-After': String(RUNS_RETRY_AFTER_SECONDS),
            'X-RateLimit-Limit': String(this.limit),
            'X-RateLimit-Remaining': '0',
            'X-RateLimit-Reset': String(reset),
          },
        );
      }
      mine.set(token, Infinity);
    });
    let startingId: string | undefined;
    try {
      const started = await start((runId) => {
        startingId = runId;
        mine.delete(token);
        mine.set(runId, Infinity);
      });
      mine.set(started.runId, Date.now());
      return started;
    } catch (err) {
      if (startingId) mine.delete(startingId);
      throw err;
    } finally {
      mine.delete(token);
    }
  }

  private oneAtATime(keyId: string, check: () => Promise<void>): Promise<void> {
    const turn = (this.turns.get(keyId) ?? Promise.resolve()).then(check);
    const settled = turn.catch(() => undefined);
    this.turns.set(keyId, settled);
    void settled.then(() => this.turns.get(keyId) === settled && this.turns.delete(keyId));
    return turn;
  }

  /**
   * The key's runs: those visibility shows running, and this process's recent and reserved ones.
   * First counted cheaply (visibility's answer of the last VISIBLE_FOR_MS, recent runs assumed
   * running): far from the limit that admits with no round trip. A count at the limit is made
   * again exactly (a fresh visibility answer, each recent run asked) before it refuses.
   */
  private async running(caller: Caller, mine: Map<string, number>): Promise<number> {
    const rough = await this.count(caller, mine, false);
    return rough < this.limit ? rough : this.count(caller, mine, true);
  }

  private async count(caller: Caller, mine: Map<string, number>, exact: boolean): Promise<number> {
    const ids = new Set(await this.visible(caller.keyId, exact));
    const now = Date.now();
    for (const [id, at] of mine) {
      if (now - at > VISIBILITY_LAG_MS) mine.delete(id);
      else if (at === Infinity || ids.has(id)) ids.add(id);
      // Started lately: visibility may not show it yet, or it may have ended already.
      else if (!exact || (await this.isRunning(id))) ids.add(id);
    }
    return ids.size;
  }

  /** The key's running runs as visibility lists them (up to the limit): a fresh answer, or one of the last VISIBLE_FOR_MS. */
  private visible(keyId: string, fresh: boolean): Promise<string[]> {
    const cached = this.visibleRuns.get(keyId);
    if (!fresh && cached && Date.now() - cached.at < VISIBLE_FOR_MS) return cached.ids;
    const ids = this.listRunning(keyId);
    this.visibleRuns.set(keyId, { at: Date.now(), ids });
    // A failed answer is not kept: the next check asks again.
    ids.catch(() => this.visibleRuns.get(keyId)?.ids === ids && this.visibleRuns.delete(keyId));
    return ids;
  }

  private async listRunning(keyId: string): Promise<string[]> {
    const owner: Caller = { keyId, admin: false };
    const clauses = [`WorkflowType = '${AGENT_RUN_WORKFLOW}'`, `ExecutionStatus = 'Running'`];
    const byAttribute = ownerClause(owner, await this.searchAttributes().catch(() => false));
    if (byAttribute) clauses.push(byAttribute);
    const ids: string[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: this.limit + 1 })) {
      if (owns(owner, info)) ids.push(runIdForWorkflow(info.workflowId));
      if (ids.length >= this.limit) break;
    }
    return ids;
  }

  private async isRunning(runId: string): Promise<boolean> {
    return (await describeIfAny(this.client, runId))?.status.name === 'RUNNING';
  }

  private async attaches(caller: Caller, idempotencyKey: string | undefined): Promise<boolean> {
    const key = idempotencyKey?.trim();
    if (!key) return false;
    return (await describeIfAny(this.client, runIdForIdempotencyKey(caller.keyId, key))) !== undefined;
  }

  private recentOf(keyId: string): Map<string, number> {
    let mine = this.recent.get(keyId);
    if (!mine) this.recent.set(keyId, (mine = new Map<string, number>()));
    return mine;
  }
}
