/**
 * The API's metrics (GET /metrics; names in docs/api.md#metrics): requests by
 * route and status, open event streams, runs started and ended, stream polls.
 * Runs and polls are counted where the API talks to Temporal, by a client
 * interceptor, so the code that starts runs and polls them stays as it is.
 */
import type { NextFunction, Request, Response } from 'express';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../common/metrics';
import type { RouteOf } from './route-templates';
import { AGENT_RUN_WORKFLOW, eventsQuery, waitForEventsUpdate, type RunTerminal } from '../contract/run-contract';

const registers = [metricsRegistry];

const requests = new Counter({
  name: 'agents_http_requests_total',
  help: 'HTTP requests answered, by method, route (as in /openapi.json; "unmatched" for any other path) and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers,
});

const openStreams = new Gauge({
  name: 'agents_sse_connections',
  help: 'Event streams open right now',
  registers,
});

const runsStarted = new Counter({
  name: 'agents_runs_started_total',
  help: 'Runs this process started in Temporal (POST /v1/agents/heroku; an Idempotency-Key that attaches to its running run counts again)',
  registers,
});

const runsEnded = new Counter({
  name: 'agents_runs_ended_total',
  help: "Runs whose end this process's event streams saw while following them, by status",
  labelNames: ['status'] as const,
  registers,
});

const polls = new Counter({
  name: 'agents_stream_polls_total',
  help: 'Requests to Temporal for stream events: long-poll updates of running runs, queries of closed ones; by outcome',
  labelNames: ['kind', 'outcome'] as const,
  registers,
});

/** Counts every request under its route (./route-templates.ts) once its connection closes. */
export function countRequests(routeOf: RouteOf) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const route = routeOf(req.path); // now: a router rewrites req.path for the routes it mounts
    // 'close' also fires for streams the client cut off, which never 'finish'.
    res.once('close', () => requests.inc({ method: req.method, route, status: String(res.statusCode) }));
    next();
  };
}

/** Counts an event stream as open until its connection closes. */
export function countOpenStream(res: Response): void {
  openStreams.inc();
  res.once('close', () => openStreams.dec());
}

/** A run's end, seen live by the run's feed in this process (api/run-feeds.ts). */
export function countRunEnded(terminal: RunTerminal): void {
  runsEnded.inc({ status: terminal.status });
}

async function counted<T>(kind: 'update' | 'query', call: () => Promise<T>): Promise<T> {
  try {
    const result = await call();
    polls.inc({ kind, outcome: 'ok' });
    return result;
  } catch (err) {
    polls.inc({ kind, outcome: 'error' });
    throw err;
  }
}

/** Counts runs started and stream polls as they go to Temporal. */
export const metricsClientInterceptor: WorkflowClientInterceptor = {
  async startWithDetails(input, next) {
    const output = await next(input);
    if (input.workflowType === AGENT_RUN_WORKFLOW) runsStarted.inc();
    return output;
  },
  async startUpdateWithStart(input, next) {
    const poll = input.updateName === waitForEventsUpdate.name;
    const output = await (poll ? counted('update', () => next(input)) : next(input));
    if (input.workflowType === AGENT_RUN_WORKFLOW) runsStarted.inc();
    return output;
  },
  startUpdate(input, next) {
    return input.updateName === waitForEventsUpdate.name ? counted('update', () => next(input)) : next(input);
  },
  query(input, next) {
    return input.queryType === eventsQuery.name ? counted('query', () => next(input)) : next(input);
  },
};
