// OpenTelemetry in Conveyor's code: one tracer, the W3C trace context a request carries across the queue, and the names of a request's spans.
//
// Only @opentelemetry/api is used here: without an SDK (tracing off, the default) every span is a
// non-recording no-op and no `trace` is written into a request. The `conveyor` processes set up the SDK
// when the OTEL_* variables ask for it (tracing-sdk.ts); a Lambda layer or an application may register
// its own instead, and these spans then go wherever it sends them.
//
// One request's trace: `conveyor.watch.event` (watcher, PRODUCER; or `conveyor.api.reconcile` for
// POST /v1/reconcile, continuing the caller's `traceparent`) → `conveyor.queue.wait` (from enqueue to
// the run's start) and `conveyor.request` (the worker or dispatcher taking the job, CONSUMER) →
// `conveyor.lambda.invoke` (dispatcher, CLIENT) → `conveyor.reconcile` (the reconcile itself, in the
// worker or the function) → `kube <verb> <resource>` per API call (CLIENT) and `conveyor.status.write`.
import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type TimeInput,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export const SPAN = {
  watchEvent: 'conveyor.watch.event',
  manualReconcile: 'conveyor.api.reconcile',
  queueWait: 'conveyor.queue.wait',
  request: 'conveyor.request',
  lambdaInvoke: 'conveyor.lambda.invoke',
  reconcile: 'conveyor.reconcile',
  statusWrite: 'conveyor.status.write',
} as const;

/** Attribute names on Conveyor's spans. Object keys are identity (namespace/name), never contents; no token or secret is ever an attribute. */
export const ATTR = {
  controller: 'conveyor.controller',
  key: 'conveyor.key',
  reason: 'conveyor.reason',
  attempt: 'conveyor.attempt',
  run: 'conveyor.run',
  outcome: 'conveyor.outcome',
  queueWaitMs: 'conveyor.queue.wait_ms',
  sinceEventMs: 'conveyor.since_event_ms',
  eventType: 'conveyor.watch.event_type',
  decision: 'conveyor.watch.reason',
  resource: 'k8s.resource',
  verb: 'conveyor.api.verb',
  method: 'http.request.method',
  status: 'http.response.status_code',
  path: 'url.path',
  objects: 'conveyor.objects',
  functionName: 'faas.invoked_name',
} as const;

export function tracer(): Tracer {
  return trace.getTracer('conveyor');
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The W3C `traceparent` of a span, for a request's `trace` field; undefined when the span does not record
 * (tracing off), so requests carry nothing then. Written here rather than through the global propagator so
 * the job holds W3C trace context whatever propagators the process registered.
 */
export function traceparentOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
}

/** A context whose parent is the remote span a `traceparent` names (ROOT_CONTEXT for none or a malformed one). */
export function contextFromTraceparent(traceparent: string | undefined, base: Context = ROOT_CONTEXT): Context {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.trim());
  if (match === null) return base;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return base;
  return trace.setSpanContext(base, { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true });
}

/** Whether a span started now would be recorded as a child of the active one: API calls outside a traced operation make no spans. */
export function inTrace(): boolean {
  return trace.getSpan(context.active())?.isRecording() === true;
}

/**
 * Runs `fn` in a new span (a child of the active one, or of `parent`), ending it when `fn` settles; a throw
 * marks the span as an error and is rethrown. `fn` gets the span to add attributes.
 */
export async function inSpan<R>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context; startTime?: TimeInput },
  fn: (span: Span) => Promise<R>,
): Promise<R> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    {
      ...(options.kind === undefined ? {} : { kind: options.kind }),
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
      ...(options.startTime === undefined ? {} : { startTime: options.startTime }),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks a span as failed with the error's name and message (never its cause chain, which may hold request data). */
export function failSpan(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
}
