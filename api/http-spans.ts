/**
 * One server span per HTTP request, continuing the caller's trace (a W3C
 * `traceparent` header) and active while the request is handled, so the
 * Temporal client's spans (StartWorkflow, the stream's polls) are its
 * children. Installed only when tracing is on (common/tracing.ts).
 */
import type { NextFunction, Request, Response } from 'express';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RouteOf } from './route-templates';

export function traceRequests(routeOf: RouteOf) {
  const tracer = trace.getTracer('durable-agents');
  return (req: Request, res: Response, next: NextFunction): void => {
    const parent = propagation.extract(context.active(), req.headers);
    const route = routeOf(req.path);
    const span = tracer.startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route, 'url.path': req.path } },
      parent,
    );
    // An event stream's span lasts as long as the stream.
    res.once('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
