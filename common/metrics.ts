/**
 * Prometheus metrics of a process (prom-client): one registry per process,
 * holding Node's own process metrics and whatever the API (api/metrics.ts)
 * and the worker (worker/metrics.ts) register, plus text sources that are
 * not prom-client's, such as the Temporal SDK's own exporter. `npm start`
 * runs both halves in one process, so its one /metrics shows both.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { collectDefaultMetrics, Registry } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

/** Exposition text from outside prom-client, appended to ours. */
export type MetricsSource = () => Promise<string>;
const sources: MetricsSource[] = [];

export function addMetricsSource(source: MetricsSource): void {
  sources.push(source);
}

/** Everything this process exposes, in Prometheus' text format. */
export async function metricsText(): Promise<string> {
  const texts = [await metricsRegistry.metrics(), ...(await Promise.all(sources.map((source) => source())))];
  return texts.map((text) => (text.endsWith('\n') || text === '' ? text : `${text}\n`)).join('');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * GET /metrics for a plain Node HTTP server or Express. With METRICS_TOKEN set
 * it wants `Authorization: Bearer <METRICS_TOKEN>` (a scraper's own key, not
 * an API key); without, it is open like /healthz.
 */
export function metricsHandler(token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token);
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (expected) {
      const [, given] = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '') ?? [];
      if (given === undefined || !timingSafeEqual(digest(given.trim()), expected)) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
        res.end(
          JSON.stringify({ error: { code: 401, message: 'metrics need Authorization: Bearer <METRICS_TOKEN>', type: 'authentication_error' } }),
        );
        return;
      }
    }
    metricsText().then(
      (text) => {
        res.writeHead(200, { 'content-type': metricsRegistry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`cannot collect metrics: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  };
}
