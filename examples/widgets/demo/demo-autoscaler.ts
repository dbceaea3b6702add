// Interim autoscaler loop for the demo: the real decision (watcher/src/autoscaler/decide.ts) every interval, applied to the demo's workers.
import type { Config, Logger, ReconcileQueue, RedisConnection } from '@conveyor/shared';
import { decideWorkers, initialAutoscaleState } from '@conveyor/watcher/autoscaler/decide';

export interface DemoAutoscalerOptions {
  config: Config;
  queue: ReconcileQueue;
  connection: RedisConnection;
  target: { apply(desired: number): Promise<void> };
  onDecision(desired: number): void;
  logger: Logger;
}

export function startDemoAutoscaler(options: DemoAutoscalerOptions): { stop(): void } {
  const a = options.config.autoscaler;
  const policy = {
    minWorkers: a.minWorkers,
    maxWorkers: a.maxWorkers,
    concurrencyPerWorker: a.target === 'dispatcher' ? 1 : options.config.worker.concurrency,
    latencyTargetMs: a.latencyTarget,
    defaultReconcileMs: a.defaultReconcile,
    scaleDownStabilizationMs: a.scaleDownStabilization,
    idleToZeroMs: a.idleToZero,
    apiBudgetQps: options.config.apiBudget.qps,
    apiCallsPerReconcile: a.apiCallsPerReconcile,
  };
  let state = initialAutoscaleState(Date.now());
  let applied: number | undefined;
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const depth = await options.queue.getDepth();
        const decision = decideWorkers(policy, state, {
          now: Date.now(),
          backlog: depth.waiting + depth.prioritized + depth.delayedDue,
          active: depth.active,
          reconcileMs: undefined,
        });
        state = decision.state;
        options.onDecision(decision.desired);
        if (decision.desired !== applied) {
          await options.target.apply(decision.desired);
          applied = decision.desired;
        }
      } catch (error) {
        options.logger.warn({ err: String(error) }, 'autoscaler interval failed');
      }
      await new Promise((resolve) => setTimeout(resolve, a.interval));
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
    },
  };
}
