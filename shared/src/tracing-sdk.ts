// The OpenTelemetry SDK of a `conveyor` process (watch, worker, dispatch, the Lambda handler), set up only when the OTEL_* variables ask for traces.
//
// Loaded with a dynamic import by those processes alone, so nothing else (a controller's own tests, the
// package's library users) loads or registers an SDK. It registers a tracer provider exporting OTLP over
// HTTP with JSON bodies (`@opentelemetry/exporter-trace-otlp-http`, which reads the standard
// OTEL_EXPORTER_OTLP_* variables: endpoint, headers, timeout), batched; the AsyncLocalStorage context
// manager that carries the active span through a reconcile's awaits; and the W3C trace-context propagator.
// The sampler follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, as the config loader read them
// (parent-based always-on by default: a request's trace is kept whenever its watch event's was).
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { Config } from './config.ts';

export interface TracingHandle {
  /** Sends every finished span now (a Lambda invocation's, before the environment freezes). */
  flush(): Promise<void>;
  /** Flushes and stops exporting (process exit). */
  shutdown(): Promise<void>;
}

/** Registers the SDK globally when `settings.enabled`; returns undefined (and registers nothing) otherwise. */
export function setupTracing(settings: Config['tracing'], defaultServiceName: string): TracingHandle | undefined {
  if (!settings.enabled) return undefined;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName ?? defaultServiceName }),
    sampler: samplerOf(settings),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  });
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

function samplerOf(settings: Config['tracing']): Sampler {
  const ratio = new TraceIdRatioBasedSampler(settings.samplerRatio);
  switch (settings.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}
