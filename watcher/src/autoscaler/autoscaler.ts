// The autoscaler loop: every interval, read depth and measured reconcile duration, decide, and scale the target.
//
// Measuring and acting are apart: every interval it measures (depth, reconcile duration) and decides, and exports
// the gauges `conveyor_backlog` and `conveyor_desired_workers`; only with a target does it act (scale the target,
// publish the desired count). The leader runs it with no target when `autoscaler.enabled` is false, so a KEDA
// ScaledObject or HPA on the gauges works with the built-in autoscaler switched off.
// Guarantees: a failed read or scale is logged and counted and tried again next interval, never fatal;
// the target is only written when the decision differs from what it runs.
import {
  type Clock,
  type Config,
  type Depth,
  errorMessage,
  type Logger,
  METRIC,
  publishDesiredWorkers,
  type RedisConnection,
  readReconcileStats,
  systemClock,
} from '@conveyor/shared';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  type AutoscaleDecision,
  type AutoscalePolicy,
  type AutoscaleReason,
  type AutoscaleState,
  decideWorkers,
  initialAutoscaleState,
} from './decide.ts';
import type { ScaleTarget } from './scale-targets.ts';

export interface AutoscalerOptions {
  controller: string;
  config: Config;
  /** Depth of the controller's queue (ReconcileQueue.getDepth). */
  depth(): Promise<Depth>;
  /** Where workers record reconcile durations (shared/src/reconcile-stats.ts). */
  connection: RedisConnection;
  /** Undefined: measure and export the gauges only, act on nothing (KEDA/HPA mode). */
  target: ScaleTarget | undefined;
  registry: Registry;
  logger: Logger;
  /** @defaultValue systemClock */
  clock?: Clock;
}

export interface Autoscaler {
  /** One decision now (the loop calls it every interval; tests call it directly). */
  tick(): Promise<AutoscaleDecision | undefined>;
  stop(): void;
}

const REASONS: readonly AutoscaleReason[] = ['latency', 'active', 'api-budget', 'min', 'max', 'stabilizing', 'idle'];

export function policyFromConfig(config: Config): AutoscalePolicy {
  const a = config.autoscaler;
  return {
    minWorkers: a.minWorkers,
    maxWorkers: a.maxWorkers,
    // A Lambda "worker" is one dispatcher slot; a container worker runs worker.concurrency at once.
    concurrencyPerWorker: a.target === 'dispatcher' ? 1 : config.worker.concurrency,
    latencyTargetMs: a.latencyTarget,
    defaultReconcileMs: a.defaultReconcile,
    scaleDownStabilizationMs: a.scaleDownStabilization,
    idleToZeroMs: a.idleToZero,
    apiBudgetQps: config.apiBudget.qps,
    apiCallsPerReconcile: a.apiCallsPerReconcile,
  };
}

export function startAutoscaler(options: AutoscalerOptions): Autoscaler {
  const { controller, config, logger, target } = options;
  const clock = options.clock ?? systemClock;
  const policy = policyFromConfig(config);
  const backlogGauge = new Gauge({
    name: METRIC.backlog,
    help: 'Requests ready to run: waiting + prioritized + delayed and due.',
    labelNames: ['controller'] as const,
    registers: [options.registry],
  });
  const desiredGauge = new Gauge({
    name: METRIC.desiredWorkers,
    help: 'Workers the autoscaler wants (container replicas, or dispatcher slots for Lambda).',
    labelNames: ['controller'] as const,
    registers: [options.registry],
  });
  const decisions = new Counter({
    name: METRIC.autoscalerDecisionsTotal,
    help: 'Autoscaler decisions by the reason that set the count.',
    labelNames: ['controller', 'reason'] as const,
    registers: [options.registry],
  });
  const failures = new Counter({
    name: METRIC.autoscalerFailuresTotal,
    help: 'Intervals in which reading depth or scaling the target failed (retried next interval).',
    labelNames: ['controller'] as const,
    registers: [options.registry],
  });
  backlogGauge.set({ controller }, 0);
  desiredGauge.set({ controller }, 0);
  failures.inc({ controller }, 0);
  for (const reason of REASONS) decisions.inc({ controller, reason }, 0);

  let state: AutoscaleState = initialAutoscaleState(clock.now());
  let applied: number | undefined;
  let inFlight: Promise<AutoscaleDecision | undefined> | undefined;

  // Overlapping calls share the interval in progress instead of deciding twice on one reading.
  const tick = (): Promise<AutoscaleDecision | undefined> => {
    inFlight ??= decide().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  const decide = async (): Promise<AutoscaleDecision | undefined> => {
    try {
      const [depth, stats] = await Promise.all([
        options.depth(),
        readReconcileStats(options.connection, config.redis, controller, 60_000, clock.now()),
      ]);
      const backlog = depth.waiting + depth.prioritized + depth.delayedDue;
      const decision = decideWorkers(policy, state, { now: clock.now(), backlog, active: depth.active, reconcileMs: stats.meanMs });
      state = decision.state;
      backlogGauge.set({ controller }, backlog);
      desiredGauge.set({ controller }, decision.desired);
      decisions.inc({ controller, reason: decision.reason });
      if (target !== undefined) {
        // Published for `conveyor status` (and followed by dispatchers when Lambda is the target): only when acting,
        // or dispatchers would follow a count nobody meant them to.
        await publishDesiredWorkers(options.connection, config.redis, controller, decision.desired, config.autoscaler.interval * 4);
        applied ??= await target.current();
        if (decision.desired !== applied) {
          await target.apply(decision.desired);
          logger.info(
            { from: applied, to: decision.desired, reason: decision.reason, backlog, active: depth.active, reconcileMs: stats.meanMs },
            `scaled ${target.describe()}`,
          );
          applied = decision.desired;
        }
      }
      return decision;
    } catch (error) {
      failures.inc({ controller });
      applied = undefined; // read the target again next time: our view of it may be wrong
      logger.warn({ err: errorMessage(error) }, 'autoscaler interval failed; trying again next interval');
      return undefined;
    }
  };

  const timer = setInterval(() => void tick(), config.autoscaler.interval);
  timer.unref();
  void tick();
  return {
    tick,
    stop() {
      clearInterval(timer);
    },
  };
}
