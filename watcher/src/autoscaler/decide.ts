// The autoscaler's decision: how many workers the backlog needs to meet a latency target, within min/max and the API budget.
//
// The worst-case wait of the last request in a queue is `backlog / (workers × concurrency) × reconcile duration`;
// solving for workers at the latency target gives the count that keeps every request within it.

export interface AutoscalePolicy {
  minWorkers: number;
  maxWorkers: number;
  /** Reconciles one worker runs at once (container concurrency; 1 "worker" = 1 slot for Lambda). */
  concurrencyPerWorker: number;
  /** The longest a request should wait in the queue. */
  latencyTargetMs: number;
  /** Reconcile duration assumed until one has been measured. */
  defaultReconcileMs: number;
  /** A scale-down waits until no higher recommendation was made within this window (like the HPA's). */
  scaleDownStabilizationMs: number;
  /** With nothing waiting or running for this long, scale to zero; `undefined` keeps `minWorkers`. */
  idleToZeroMs: number | undefined;
  /** Cluster-wide API budget and what one reconcile costs of it: more workers than it can feed are waste. */
  apiBudgetQps: number;
  apiCallsPerReconcile: number;
}

export interface AutoscaleSample {
  now: number;
  /** Requests ready to run: waiting + prioritized + delayed-and-due. */
  backlog: number;
  active: number;
  /** Measured mean reconcile duration, when any reconcile finished recently. */
  reconcileMs: number | undefined;
}

export interface AutoscaleState {
  /** Recent recommendations, newest last, kept for the stabilisation window. */
  recommendations: readonly { at: number; workers: number }[];
  /** When the queue last had anything waiting or running. */
  lastBusyAt: number;
}

export type AutoscaleReason = 'latency' | 'active' | 'api-budget' | 'min' | 'max' | 'stabilizing' | 'idle';

export interface AutoscaleDecision {
  desired: number;
  reason: AutoscaleReason;
  state: AutoscaleState;
}

export function initialAutoscaleState(now: number): AutoscaleState {
  return { recommendations: [], lastBusyAt: now };
}

export function decideWorkers(policy: AutoscalePolicy, state: AutoscaleState, sample: AutoscaleSample): AutoscaleDecision {
  const busy = sample.backlog + sample.active > 0;
  const lastBusyAt = busy ? sample.now : state.lastBusyAt;
  if (!busy && policy.idleToZeroMs !== undefined && sample.now - lastBusyAt >= policy.idleToZeroMs) {
    return { desired: 0, reason: 'idle', state: { recommendations: [], lastBusyAt } };
  }

  const reconcileMs = sample.reconcileMs ?? policy.defaultReconcileMs;
  const slots = Math.max(1, policy.concurrencyPerWorker);
  const forLatency = Math.ceil((sample.backlog * reconcileMs) / (policy.latencyTargetMs * slots));
  const forActive = Math.ceil(sample.active / slots);
  const budgetCap = Math.max(1, Math.floor((policy.apiBudgetQps * reconcileMs) / (1000 * policy.apiCallsPerReconcile * slots)));

  let workers = Math.max(forLatency, forActive);
  let reason: AutoscaleReason = forLatency >= forActive ? 'latency' : 'active';
  if (workers > budgetCap) {
    workers = budgetCap;
    reason = 'api-budget';
  }
  if (workers > policy.maxWorkers) {
    workers = policy.maxWorkers;
    reason = 'max';
  }
  if (workers < policy.minWorkers) {
    workers = policy.minWorkers;
    reason = 'min';
  }

  const windowStart = sample.now - policy.scaleDownStabilizationMs;
  const recommendations = [...state.recommendations.filter((r) => r.at > windowStart), { at: sample.now, workers }];
  const highest = Math.max(...recommendations.map((r) => r.workers));
  if (highest > workers) return { desired: highest, reason: 'stabilizing', state: { recommendations, lastBusyAt } };
  return { desired: workers, reason, state: { recommendations, lastBusyAt } };
}
