/**
 * The HTTP front door: Heroku's POST /v1/agents/heroku plus our durable-run
 * extensions (docs/api.md#part-b-durable-run-extensions). Every route is
 * thin; the run lives in Temporal.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Client } from '@temporalio/client';
import { JsonSchemas } from '../catalog/json-schema';
import type { ToolCatalog } from '../catalog/resolve-tools';
import { ToolNotAllowedError, ToolValidationError } from '../catalog/tool-spec';
import type { ApiConfig } from '../common/config';
import { runFields, type Log } from '../common/log';
import { isRunId } from '../common/run-ids';
import { ApiError, invalidRequest, temporalUnavailable } from './api-error';
import { callerOf, keyRing } from './auth';
import { startRun } from './start-run';
import { decideApproval } from './approvals';
import { usageOf } from './usage';
import { backgroundAnswer, backgroundHeaders, prefersAsync } from './background';
import { cancelRun, describe, listRuns, readRun } from './runs';
import { RunFeeds } from './run-feeds';
import { streamRun, type OpenStreams } from './stream-run';
import { healthOf } from './health';
import { RunConcurrency, requestRate } from './quotas';
import type { ApiPresence } from './api-presence';
import { listMcpServers } from './mcp-servers';
import type { McpPool } from '../mcp/pool';
import { metricsHandler } from '../common/metrics';
import { countRequests } from './metrics';
import { traceRequests } from './http-spans';
import { openApiDocument } from './openapi';
import { routeMatcher } from './route-templates';

export interface AppDeps {
  client: Client;
  namespace: string;
  config: ApiConfig;
  /** The MCP servers of MCP_SERVERS, connected and listed at start-up. */
  mcp: McpPool;
  log: Log;
  /** Whether runs carry our custom search attributes (they are registered on the namespace). */
  searchAttributes: () => Promise<boolean>;
  /** Where the SSE streams are registered, so a shutdown can end them cleanly. */
  streams: OpenStreams;
  /** How many API processes share the namespace (for each one's share of a key's request rate). */
  presence: ApiPresence;
  /** AGENTS_KEY_ID_SECRET (the API refuses to start without it). */
  keyIdSecret: string;
}

type Handler = (req: Request, res: Response) => Promise<void>;
const route = (handler: Handler) => (req: Request, res: Response, next: NextFunction) => handler(req, res).catch(next);

export function createApp(deps: AppDeps) {
  const { client, config, log, mcp, streams } = deps;
  const catalog: ToolCatalog = {
    mcp: { pool: mcp, maxTtlSeconds: config.mcpMaxTtlSeconds },
    schemas: new JsonSchemas(config.toolSchemas),
    limits: config.toolLimits,
  };
  const keys = keyRing({ apiKeys: config.apiKeys, adminKeys: config.adminKeys, keyIdSecret: deps.keyIdSecret });
  const searchAttributes = () => deps.searchAttributes().catch(() => false);
  const concurrency = new RunConcurrency(client, config.quotas.concurrentRuns, searchAttributes);
  const feeds = new RunFeeds(client, log);
  const { keepAliveMs } = config;
  const app = express();
  app.disable('x-powered-by');
  const openApi = openApiDocument();
  const routeOf = routeMatcher(Object.keys(openApi.paths ?? {}));
  if (config.tracing) app.use(traceRequests(routeOf));
  app.use(countRequests(routeOf));
  app.get('/metrics', metricsHandler(config.metricsToken));
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  app.get(
    '/healthz',
    route(async (req, res) => {
      const health = await healthOf(client, deps.namespace, { api_processes: deps.presence.processes, streams: streams.stats() });
      // Internals (Temporal's error text, worker counts) only for those with a key.
      res.status(health.ok ? 200 : 503).json(keys.isAuthenticated(req) ? health : { ok: health.ok });
    }),
  );

  const v1 = express.Router();
  v1.use(keys.authenticate);
  v1.use(requestRate(config.quotas.requestsPerMinute, () => deps.presence.processes));

  v1.post(
    '/agents/heroku',
    // Any content type is read as JSON: Heroku's clients are not all careful with headers.
    express.json({ limit: config.maxBodyBytes, type: () => true, strict: false }),
    route(async (req, res) => {
      const { runId, background, firstPoll } = await concurrency.admit(callerOf(res), req.get('Idempotency-Key'), async (starting) =>
        startRun(
          client,
          config,
          catalog,
          req.body,
          {
            apiKeyId: res.locals.apiKeyId as string,
            idempotencyKey: req.get('Idempotency-Key'),
            feed: feeds.feedId,
            starting,
          },
          await searchAttributes(),
        ),
      );
      log.info('run started', runFields(runId));
      if (background || prefersAsync(req)) {
        res.status(202).set(backgroundHeaders(runId)).json(backgroundAnswer(runId));
        return;
      }
      streamRun(req, res, feeds.get(runId, firstPoll), runId, -1, keepAliveMs, streams);
    }),
  );

  v1.get(
    '/agents/runs',
    route(async (req, res) => {
      res.json(await listRuns(client, callerOf(res), req.query, await searchAttributes()));
    }),
  );

  v1.get(
    '/agents/runs/:id',
    route(async (req, res) => {
      res.json(await readRun(client, callerOf(res), runIdParam(req)));
    }),
  );

  v1.post(
    '/agents/runs/:id/cancel',
    route(async (req, res) => {
      res.status(202).json(await cancelRun(client, callerOf(res), runIdParam(req)));
    }),
  );

  v1.post(
    '/agents/runs/:id/approvals/:toolCallId',
    express.json({ limit: '64kb', type: () => true, strict: false }),
    route(async (req, res) => {
      res.json(await decideApproval(client, callerOf(res), runIdParam(req), String(req.params.toolCallId), req.body));
    }),
  );

  v1.get(
    '/agents/runs/:id/stream',
    route(async (req, res) => {
      const runId = runIdParam(req);
      await describe(client, callerOf(res), runId); // 404 before any stream starts (another key's run too)
      streamRun(req, res, feeds.get(runId), runId, resumeOffset(req), keepAliveMs, streams);
    }),
  );

  v1.get(
    '/agents/usage',
    route(async (req, res) => {
      res.json(await usageOf(client, config, callerOf(res), req.query, await searchAttributes()));
    }),
  );

  v1.get('/mcp/servers', (_req, res) => {
    res.json(listMcpServers(mcp));
  });

  // Lists every server's tools again now (reconnecting those that are down), instead of on the next unknown name.
  v1.post(
    '/mcp/servers/sync',
    route(async (_req, res) => {
      await mcp.syncAll();
      res.json(listMcpServers(mcp));
    }),
  );

  app.use('/v1', v1);

  app.use((_req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError(404, 'not_found_error', 'no such endpoint'));
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) log.warn('request failed', { error: String(err) });
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(apiError.status).set(apiError.headers).json(apiError.body());
  });
  return app;
}

function runIdParam(req: Request): string {
  const id = String(req.params.id);
  if (!isRunId(id)) throw new ApiError(404, 'not_found_error', `no run with id '${id}'`);
  return id;
}

/** `Last-Event-ID` (what EventSource sends on reconnect) or `?after=n`: the last offset the client has. */
function resumeOffset(req: Request): number {
  const raw = req.get('Last-Event-ID') ?? (typeof req.query.after === 'string' ? req.query.after : undefined);
  if (raw === undefined || raw === '') return -1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < -1) throw invalidRequest(`Last-Event-ID / after must be an integer >= -1, got '${raw}'`);
  return n;
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const unavailable = temporalUnavailable(err);
  if (unavailable) return unavailable;
  if (err instanceof ToolValidationError) return invalidRequest(err.message, { cause: err });
  if (err instanceof ToolNotAllowedError) return new ApiError(403, 'authorization_error', err.message, { cause: err });
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new ApiError(413, 'invalid_request_error', 'request body is larger than the limit');
  if (e?.type === 'entity.parse.failed') return invalidRequest(`malformed JSON: ${e.message}`);
  if (e?.status && e.status >= 400 && e.status < 500) return invalidRequest(e.message ?? 'bad request');
  return new ApiError(500, 'server_error', 'internal error');
}
