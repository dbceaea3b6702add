// Metric names (controller-runtime's and client-go workqueue's, so existing dashboards work) and the registry helpers that create them at 0.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Outcome } from './outcome.ts';
import { LANES, type Lane } from './queue/lanes.ts';

/** Every metric name Conveyor exports, in one place. Names are a public contract: never rename one. */
export const METRIC = {
  reconcileTotal: 'controller_runtime_reconcile_total',
  reconcileErrorsTotal: 'controller_runtime_reconcile_errors_total',
  terminalReconcileErrorsTotal: 'controller_runtime_terminal_reconcile_errors_total',
  reconcileTimeSeconds: 'controller_runtime_reconcile_time_seconds',
  reconcilePanicsTotal: 'controller_runtime_reconcile_panics_total',
  activeWorkers: 'controller_runtime_active_workers',
  maxConcurrentReconciles: 'controller_runtime_max_concurrent_reconciles',
  workqueueDepth: 'workqueue_depth',
  queueDepthByLane: 'conveyor_queue_depth',
  queueBlocked: 'conveyor_queue_blocked',
  workqueueAddsTotal: 'workqueue_adds_total',
  workqueueQueueDurationSeconds: 'workqueue_queue_duration_seconds',
  workqueueWorkDurationSeconds: 'workqueue_work_duration_seconds',
  workqueueRetriesTotal: 'workqueue_retries_total',
  eventToReconcileStartSeconds: 'conveyor_event_to_reconcile_start_seconds',
  parkedRequests: 'conveyor_parked_requests',
  apiRequestsTotal: 'conveyor_api_requests_total',
  apiBudgetWaitSeconds: 'conveyor_api_budget_wait_seconds',
  // watcher
  leaderElectionMasterStatus: 'leader_election_master_status',
  backlog: 'conveyor_backlog',
  desiredWorkers: 'conveyor_desired_workers',
  autoscalerDecisionsTotal: 'conveyor_autoscaler_decisions_total',
  autoscalerFailuresTotal: 'conveyor_autoscaler_failures_total',
  watchEventsTotal: 'conveyor_watch_events_total',
  watchRestartsTotal: 'conveyor_watch_restarts_total',
  watchRelistsTotal: 'conveyor_watch_relists_total',
  watchTrackedObjects: 'conveyor_watch_tracked_objects',
  watchEnqueuedTotal: 'conveyor_watch_enqueued_total',
  watchEnqueueFailuresTotal: 'conveyor_watch_enqueue_failures_total',
  watchSynced: 'conveyor_watch_synced',
  watchLeader: 'conveyor_watch_leader',
  lambdaInvocationsTotal: 'conveyor_lambda_invocations_total',
  lambdaInvokeDurationSeconds: 'conveyor_lambda_invoke_duration_seconds',
} as const;

/** controller-runtime's `result` label values. */
export const RECONCILE_RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];

/** Status code classes of API requests, so the label set stays small and known up front. */
export const API_CODE_CLASSES = ['2xx', '404', '409', '422', '429', '4xx', '5xx', 'error'] as const;
export type ApiCodeClass = (typeof API_CODE_CLASSES)[number];

/** Kubernetes' verbs, as RBAC and the API server's audit log name them; `apply` is a server-side apply PATCH. */
export const API_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'apply', 'delete'] as const;
export type ApiVerb = (typeof API_VERBS)[number];

/** Why a request is parked: a failure no retry can fix (`terminal`), or every attempt used (`exhausted`). */
export const PARKED_REASONS = ['terminal', 'exhausted'] as const;
export type ParkedReason = (typeof PARKED_REASONS)[number];

// controller-runtime's buckets for reconcile time, and client-go's for the workqueue (10 ns to 1000 s).
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5,
  5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);
// Watch event to reconcile start: from a few milliseconds (an idle queue) to many minutes (a backlog or a scale-from-zero).
const EVENT_TO_START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export function createMetricsRegistry(): Registry {
  return new Registry();
}

/**
 * One exposition of several registries whose metrics share names but not label sets: the registries of several
 * controllers in one process, each series labelled with its controller. (`Registry.merge` refuses a name twice;
 * the aggregation joins the series of each name under one HELP and TYPE.) `base` holds the process's own metrics,
 * which no controller registry repeats.
 */
export async function combinedMetrics(base: Registry | undefined, perController: readonly Registry[]): Promise<string> {
  const parts: string[] = [];
  if (base !== undefined) parts.push(await base.metrics());
  if (perController.length === 1) parts.push(await (perController[0] as Registry).metrics());
  else if (perController.length > 1)
    parts.push(await AggregatorRegistry.aggregate(await Promise.all(perController.map((r) => r.getMetricsAsJSON()))).metrics());
  return parts.filter((part) => part !== '').join('\n');
}

/** The result label controller-runtime would record for an outcome. */
export function resultOf(outcome: Outcome): ReconcileResult {
  switch (outcome.kind) {
    case 'done':
      return 'success';
    case 'requeueAfter':
      return 'requeue_after';
    case 'throttled':
      return 'requeue';
    case 'blocked':
      return 'error';
    case 'error':
    case 'terminal':
      return 'error';
  }
}

/** One finished reconcile, as the metrics see it. */
export interface ReconcileObservation {
  outcome: Outcome;
  /** How long the reconcile ran (for Lambda: the invocation). */
  runSeconds: number;
  /** From enqueue to this run's start. */
  queuedSeconds: number;
  /** From the watch event that caused the request to this run's start; only for a request's first run. */
  sinceEventSeconds?: number | undefined;
  /** 1 for the first attempt. */
  attempt: number;
  /** The queue will run the request again (requeue-after, a throttle, an error with attempts left): client-go counts that as an add. */
  requeued: boolean;
  /** The reconcile crashed rather than failed (see `panicked` in process-request.ts). */
  panicked?: boolean | undefined;
}

export interface ReconcileMetrics {
  observe(observation: ReconcileObservation): void;
  setActive(n: number): void;
  setMaxConcurrent(n: number): void;
  /** One API request a reconcile made here, and how long it waited for the API budget. */
  apiRequest(verb: ApiVerb, code: ApiCodeClass, waitedSeconds: number): void;
  /** API requests made elsewhere (a Lambda invocation, which reports them with its outcome). */
  apiRequests(verb: ApiVerb, code: ApiCodeClass, count: number): void;
  budgetWaited(seconds: number): void;
  /** Whether this process finds the queue paused by a failure no retry can fix (queue-block.ts). */
  setBlocked(blocked: boolean): void;
}

/** `workqueue_adds_total{name}`: requests that became a new job or a re-run, not those merged into one already queued (client-go's meaning). */
export function workqueueAdds(registry: Registry, controller: string): (count: number) => void {
  const adds = new Counter({
    name: METRIC.workqueueAddsTotal,
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name'],
    registers: [registry],
  });
  adds.inc({ name: controller }, 0);
  return (count) => {
    if (count > 0) adds.inc({ name: controller }, count);
  };
}

/** `conveyor_api_requests_total{controller,verb,code}`, every verb and code at 0: one vocabulary for the watcher, workers and dispatcher. */
export function apiRequestCounter(registry: Registry, controller: string): (verb: ApiVerb, code: ApiCodeClass, count?: number) => void {
  const api = new Counter({
    name: METRIC.apiRequestsTotal,
    help: 'Kubernetes API requests, by verb and status code class',
    labelNames: ['controller', 'verb', 'code'],
    registers: [registry],
  });
  for (const verb of API_VERBS) for (const code of API_CODE_CLASSES) api.inc({ controller, verb, code }, 0);
  return (verb, code, count = 1) => api.inc({ controller, verb, code }, count);
}

/** How long requests wait (in the queue, and since their watch event) and run, as client-go and Conveyor time them. */
function waitAndWorkHistograms(registry: Registry) {
  const queued = new Histogram({
    name: METRIC.workqueueQueueDurationSeconds,
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name'],
    buckets: WORKQUEUE_BUCKETS,
    registers: [registry],
  });
  const sinceEvent = new Histogram({
    name: METRIC.eventToReconcileStartSeconds,
    help: 'From the watch event the watcher saw to the start of the reconcile it caused, across the watcher buffer and the queue',
    labelNames: ['controller'],
    buckets: EVENT_TO_START_BUCKETS,
    registers: [registry],
  });
  const work = new Histogram({
    name: METRIC.workqueueWorkDurationSeconds,
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['name'],
    buckets: WORKQUEUE_BUCKETS,
    registers: [registry],
  });
  return { queued, sinceEvent, work };
}

/** Creates the reconcile, workqueue and API metrics of one controller in a worker or dispatcher, every labelled series at 0. */
export function reconcileMetrics(registry: Registry, controller: string): ReconcileMetrics {
  const labels = ['controller'] as const;
  const total = new Counter({
    name: METRIC.reconcileTotal,
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
  const errors = new Counter({
    name: METRIC.reconcileErrorsTotal,
    help: 'Total number of reconciliation errors per controller',
    labelNames: labels,
    registers: [registry],
  });
  const terminal = new Counter({
    name: METRIC.terminalReconcileErrorsTotal,
    help: 'Total number of terminal reconciliation errors per controller',
    labelNames: labels,
    registers: [registry],
  });
  const time = new Histogram({
    name: METRIC.reconcileTimeSeconds,
    help: 'Length of time per reconciliation per controller',
    labelNames: labels,
    buckets: RECONCILE_BUCKETS,
    registers: [registry],
  });
  const panics = new Counter({
    name: METRIC.reconcilePanicsTotal,
    help: 'Total number of reconciliation panics per controller: reconciles that crashed with a bug (TypeError, ReferenceError, …) rather than failed',
    labelNames: labels,
    registers: [registry],
  });
  const active = new Gauge({
    name: METRIC.activeWorkers,
    help: 'Number of currently used workers per controller',
    labelNames: labels,
    registers: [registry],
  });
  const max = new Gauge({
    name: METRIC.maxConcurrentReconciles,
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: labels,
    registers: [registry],
  });
  const { queued, sinceEvent, work } = waitAndWorkHistograms(registry);
  const retries = new Counter({
    name: METRIC.workqueueRetriesTotal,
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name'],
    registers: [registry],
  });
  const adds = workqueueAdds(registry, controller);
  const api = apiRequestCounter(registry, controller);
  const budgetWait = new Histogram({
    name: METRIC.apiBudgetWaitSeconds,
    help: 'How long API requests waited for the cluster-wide API budget',
    labelNames: labels,
    buckets: [0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const setBlocked = queueBlockedGauge(registry, controller);
  const c = { controller };
  const q = { name: controller };
  for (const result of RECONCILE_RESULTS) total.inc({ controller, result }, 0);
  errors.inc(c, 0);
  terminal.inc(c, 0);
  panics.inc(c, 0);
  retries.inc(q, 0);
  time.zero(c);
  queued.zero(q);
  sinceEvent.zero(c);
  work.zero(q);
  budgetWait.zero(c);
  active.set(c, 0);
  max.set(c, 0);

  return {
    observe(o) {
      const { outcome } = o;
      total.inc({ controller, result: resultOf(outcome) });
      if (outcome.kind === 'error' || outcome.kind === 'terminal' || outcome.kind === 'blocked') errors.inc(c);
      if (outcome.kind === 'terminal') terminal.inc(c);
      if (o.panicked === true) panics.inc(c);
      time.observe(c, o.runSeconds);
      work.observe(q, o.runSeconds);
      queued.observe(q, Math.max(0, o.queuedSeconds));
      if (o.sinceEventSeconds !== undefined) sinceEvent.observe(c, Math.max(0, o.sinceEventSeconds));
      if (o.attempt > 1) retries.inc(q);
      if (o.requeued) adds(1);
    },
    setActive: (n) => active.set(c, n),
    setMaxConcurrent: (n) => max.set(c, n),
    apiRequest(verb, code, waitedSeconds) {
      api(verb, code);
      budgetWait.observe(c, waitedSeconds);
    },
    apiRequests: (verb, code, count) => api(verb, code, count),
    budgetWaited: (seconds) => budgetWait.observe(c, seconds),
    setBlocked,
  };
}

/** `conveyor_queue_blocked{controller}`, at 0: 1 while this process finds the queue paused by a failure no retry can fix. */
function queueBlockedGauge(registry: Registry, controller: string): (blocked: boolean) => void {
  const gauge = new Gauge({
    name: METRIC.queueBlocked,
    help: '1 while the queue is paused by a failure no retry can fix (missing credentials, no such function, access denied), else 0',
    labelNames: ['controller'],
    registers: [registry],
  });
  gauge.set({ controller }, 0);
  return (blocked) => gauge.set({ controller }, blocked ? 1 : 0);
}

/** The code class label of an HTTP status (or `error` when no response came back). */
export function codeClassOf(status: number | undefined): ApiCodeClass {
  if (status === undefined) return 'error';
  if (status >= 200 && status < 300) return '2xx';
  if (status === 404 || status === 409 || status === 422 || status === 429) return String(status) as ApiCodeClass;
  if (status >= 500) return '5xx';
  return '4xx';
}

/** What one read of the queue gives the depth gauges. */
export interface DepthReading {
  /** waiting + prioritized + delayed-and-due */
  total: number;
  /** Queued requests by lane (queue/lanes.ts); resync includes its backlog. */
  lanes: Readonly<Record<Lane, number>>;
}

/** How long a scrape waits for the depth before it shows the last values read. */
const DEPTH_READ_MS = 1_000;

/**
 * `workqueue_depth{name}` and `conveyor_queue_depth{controller,lane}`, from one read of the queue at
 * each scrape; every lane's series starts at 0.
 */
export function workqueueDepthGauge(registry: Registry, controller: string, readDepth: () => Promise<DepthReading>): Gauge {
  const byLane = new Gauge({
    name: METRIC.queueDepthByLane,
    help: 'Requests queued (not running) by lane: event, manual, resync (with the resync backlog)',
    labelNames: ['controller', 'lane'],
    registers: [registry],
  });
  for (const lane of LANES) byLane.set({ controller, lane }, 0);
  return new Gauge({
    name: METRIC.workqueueDepth,
    help: 'Current depth of workqueue',
    labelNames: ['name'],
    registers: [registry],
    async collect() {
      // Redis unreachable during a scrape (commands then wait for a reconnect): keep the last values
      // after a second rather than failing, or hanging, the whole scrape.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), DEPTH_READ_MS);
      });
      const depth = await Promise.race([readDepth().catch(() => undefined), late]);
      clearTimeout(timer);
      if (depth === undefined) return;
      this.set({ name: controller }, depth.total);
      for (const lane of LANES) byLane.set({ controller, lane }, depth.lanes[lane]);
    },
  });
}

/**
 * `conveyor_parked_requests{controller,reason}`: requests kept in the failed set for a person to look at, read
 * from Redis at each scrape. Exported by the active watcher, which runs while workers are scaled to zero.
 */
export function parkedRequestsGauge(registry: Registry, controller: string, read: () => Promise<Record<ParkedReason, number>>): Gauge {
  const gauge: Gauge = new Gauge({
    name: METRIC.parkedRequests,
    help: 'Parked requests (retried by the next resync or conveyor parked retry), by why: terminal or exhausted',
    labelNames: ['controller', 'reason'],
    registers: [registry],
    async collect() {
      try {
        const counts = await read();
        for (const reason of PARKED_REASONS) this.set({ controller, reason }, counts[reason]);
      } catch {
        // Redis unreachable during a scrape: keep the last value rather than failing the whole scrape.
      }
    },
  });
  for (const reason of PARKED_REASONS) gauge.set({ controller, reason }, 0);
  return gauge;
}
