/**
 * OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set:
 * then one tracer provider per process exports spans over OTLP/HTTP, and
 * Temporal's OpenTelemetry plugin carries the trace from the API's client
 * through the workflow into every activity (StartWorkflow → RunWorkflow →
 * StartActivity → RunActivity). Unset, nothing is loaded or registered: no
 * provider, no plugin, no interceptors.
 */
import type { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

export interface TracingConfig {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** OTEL_SERVICE_NAME. */
  serviceName: string;
}

export interface Tracing {
  /** For `plugins` of the Temporal Client and Worker. */
  plugin: OpenTelemetryPlugin;
  /** Sends the spans still buffered; call before the process exits. */
  flush(): Promise<void>;
}

let current: Promise<Tracing> | undefined;

/** The process's tracing (the API and the worker share it under `npm start`); undefined when it is off. */
export async function processTracing(config: TracingConfig | undefined): Promise<Tracing | undefined> {
  if (!config) return undefined;
  current ??= startTracing(config);
  return current;
}

async function startTracing(config: TracingConfig): Promise<Tracing> {
  const [{ OTLPTraceExporter }, { Resource }, { BatchSpanProcessor }, { NodeTracerProvider }, { OpenTelemetryPlugin }] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-trace-node'),
    import('@temporalio/interceptors-opentelemetry'),
  ]);
  const resource = new Resource({ 'service.name': config.serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.endpoint}/v1/traces` }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // Global: the AsyncLocalStorage context manager and the W3C trace-context propagator.
  provider.register();
  return { plugin: new OpenTelemetryPlugin({ resource, spanProcessor }), flush: () => provider.forceFlush() };
}
