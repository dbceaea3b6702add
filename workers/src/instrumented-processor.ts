// The bookkeeping around one request, shared by the container worker and the Lambda dispatcher: busy slots, reconcile metrics, and the duration sample the autoscaler reads.
import {
  type Clock,
  type Config,
  errorMessage,
  type Logger,
  type Outcome,
  type ReconcileMetrics,
  type RedisConnection,
  type RequestContext,
  recordReconcile,
  systemClock,
} from '@conveyor/shared';

/** Runs one request and says how long the reconcile itself took (for Lambda: the invocation). */
export type TimedRun = (request: RequestContext) => Promise<{ outcome: Outcome; durationMs: number }>;

export interface InstrumentationDeps {
  controller: string;
  metrics: ReconcileMetrics;
  connection: RedisConnection;
  redis: Config['redis'];
  logger: Logger;
  /** @defaultValue systemClock */
  clock?: Clock;
}

export interface InstrumentedProcessor {
  process(request: RequestContext): Promise<Outcome>;
  /** Requests running now. */
  active(): number;
}

/**
 * Wraps `run` so that every request counts as an active slot while it runs, its outcome, duration
 * and queue wait reach the controller-runtime metrics, and its duration reaches Redis, where the
 * autoscaler in the watcher reads it. A lost duration sample only makes that estimate a little older.
 */
export function instrumentedProcessor(run: TimedRun, deps: InstrumentationDeps): InstrumentedProcessor {
  const clock = deps.clock ?? systemClock;
  let active = 0;
  return {
    active: () => active,
    async process(request) {
      active += 1;
      deps.metrics.setActive(active);
      const started = clock.now();
      try {
        const { outcome, durationMs } = await run(request);
        deps.metrics.observe(outcome, durationMs / 1_000, (started - request.enqueuedAt) / 1_000, request.attempt);
        const failed = outcome.kind === 'error' || outcome.kind === 'terminal';
        recordReconcile(deps.connection, deps.redis, deps.controller, durationMs, failed).catch((error: unknown) =>
          deps.logger.debug({ err: errorMessage(error) }, 'reconcile stats not recorded'),
        );
        return outcome;
      } finally {
        active -= 1;
        deps.metrics.setActive(active);
      }
    },
  };
}
