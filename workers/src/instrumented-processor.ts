// The bookkeeping around one request, shared by the container worker and the Lambda dispatcher: busy slots, reconcile metrics, the duration sample the autoscaler reads, and the request's spans.

import {
  ATTR,
  type Clock,
  type Config,
  contextFromTraceparent,
  errorMessage,
  failSpan,
  formatKey,
  inSpan,
  type Logger,
  type Outcome,
  type ReconcileMetrics,
  type RedisConnection,
  type RequestContext,
  reconcileRecorder,
  SPAN,
  settleWithin,
  systemClock,
  tracer,
} from '@conveyor/shared';
import { SpanKind } from '@opentelemetry/api';

/** What one run reports: its outcome, how long the reconcile itself took (for Lambda: the invocation), whether it crashed. */
export interface TimedResult {
  outcome: Outcome;
  durationMs: number;
  panicked?: boolean;
}

export type TimedRun = (request: RequestContext) => Promise<TimedResult>;

export interface InstrumentationDeps {
  controller: string;
  metrics: ReconcileMetrics;
  connection: RedisConnection;
  redis: Config['redis'];
  /** `queue.attempts`: whether an error is retried (a re-add) or parks the request. */
  attempts: number;
  logger: Logger;
  /** @defaultValue systemClock */
  clock?: Clock;
}

export interface InstrumentedProcessor {
  process(request: RequestContext): Promise<Outcome>;
  /** Requests running now. */
  active(): number;
  /** Writes the reconcile counts not yet written (before the process closes its Redis connection). */
  flush(): Promise<void>;
}

/**
 * Wraps `run` so that every request counts as an active slot while it runs, its outcome, duration
 * and queue wait reach the controller-runtime metrics, and its duration reaches Redis (summed with the others
 * of the last second: `reconcileRecorder`), where the autoscaler in the watcher reads it. A lost duration sample
 * only makes that estimate a little older.
 *
 * It also continues the request's trace (the `traceparent` its origin wrote into the job): a
 * `conveyor.queue.wait` span from enqueue to this run's start (a request's first run only) and a
 * `conveyor.request` span around the run, both children of the watch event's or API call's span,
 * so one trace crosses the queue. Without a trace (tracing off, a resync) the spans are no-ops or roots.
 */
export function instrumentedProcessor(run: TimedRun, deps: InstrumentationDeps): InstrumentedProcessor {
  const clock = deps.clock ?? systemClock;
  let active = 0;
  const stats = reconcileRecorder(deps.connection, deps.redis, deps.controller, {
    onError: (error: unknown) => deps.logger.debug({ err: errorMessage(error) }, 'reconcile stats not recorded'),
  });
  return {
    active: () => active,
    async flush() {
      // Bounded: with Redis away a write would wait for the reconnect, and a stopping process must not.
      if (deps.connection.status === 'ready') await settleWithin(stats.flush(), 1_000);
    },
    async process(request) {
      active += 1;
      deps.metrics.setActive(active);
      const started = clock.now();
      const parent = contextFromTraceparent(request.trace);
      const key = formatKey(request.key);
      if (request.runs === 1) {
        const wait = tracer().startSpan(SPAN.queueWait, { startTime: request.enqueuedAt, attributes: { [ATTR.key]: key } }, parent);
        wait.end(started);
      }
      const attributes = {
        [ATTR.controller]: deps.controller,
        [ATTR.key]: key,
        [ATTR.reason]: request.reason,
        [ATTR.attempt]: request.attempt,
        [ATTR.run]: request.runs,
        [ATTR.queueWaitMs]: Math.max(0, started - request.enqueuedAt),
      };
      try {
        const { outcome, durationMs, panicked } = await inSpan(
          SPAN.request,
          { kind: SpanKind.CONSUMER, attributes, parent },
          async (span) => {
            const result = await run(request);
            span.setAttribute(ATTR.outcome, result.outcome.kind);
            if (result.outcome.kind === 'error' || result.outcome.kind === 'terminal')
              failSpan(span, `${result.outcome.code}: ${result.outcome.message}`);
            return result;
          },
        );
        const failed = outcome.kind === 'error' || outcome.kind === 'terminal';
        deps.metrics.observe({
          outcome,
          runSeconds: durationMs / 1_000,
          queuedSeconds: (started - request.enqueuedAt) / 1_000,
          // Only a request's first run: a requeue-after or retry of the same job would count the delay it asked for.
          sinceEventSeconds: request.eventAt === undefined || request.runs > 1 ? undefined : (started - request.eventAt) / 1_000,
          attempt: request.attempt,
          requeued:
            outcome.kind === 'requeueAfter' ||
            outcome.kind === 'throttled' ||
            (outcome.kind === 'error' && request.attempt < deps.attempts),
          panicked,
        });
        stats.record(durationMs, failed);
        return outcome;
      } finally {
        active -= 1;
        deps.metrics.setActive(active);
      }
    },
  };
}
