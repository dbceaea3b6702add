// The watcher's Prometheus metrics: events by decision and reason, restarts, relists, tracked objects — every known series created at 0, each labelled with its controller.
import { METRIC } from '@conveyor/shared';
import { Counter, Gauge, type Registry } from 'prom-client';

export const EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'LISTED', 'MALFORMED'] as const;
export type MetricEventType = (typeof EVENT_TYPES)[number];

/** A counter whose `controller` label is already set: call sites name only the labels that vary. */
export interface BoundCounter<L extends string> {
  inc(labels: Record<L, string>, value?: number): void;
  /** The underlying series (every controller's), for tests and benchmarks. */
  get: Counter<L | 'controller'>['get'];
}

/** A gauge whose `controller` label is already set. */
export interface BoundGauge<L extends string> {
  set(labels: Record<L, string>, value: number): void;
}

function bindCounter<L extends string>(counter: Counter<L | 'controller'>, controller: string): BoundCounter<L> {
  return {
    inc: (labels, value = 1) => counter.inc({ controller, ...labels } as Record<L | 'controller', string>, value),
    get: () => counter.get(),
  };
}

function bindGauge<L extends string>(gauge: Gauge<L | 'controller'>, controller: string): BoundGauge<L> {
  return { set: (labels, value) => gauge.set({ controller, ...labels } as Record<L | 'controller', string>, value) };
}

export class WatcherMetrics {
  readonly events: BoundCounter<'resource' | 'type' | 'decision' | 'reason'>;
  readonly restarts: BoundCounter<'resource' | 'reason'>;
  readonly relists: BoundCounter<'resource' | 'reason'>;
  readonly tracked: BoundGauge<'resource'>;
  readonly enqueued: BoundCounter<'reason'>;
  readonly enqueueFailures: BoundCounter<never>;
  readonly synced: BoundGauge<'resource'>;
  readonly leader: BoundGauge<never>;

  constructor(registry: Registry, controller: string) {
    const registers = [registry];
    this.events = bindCounter(
      new Counter({
        name: METRIC.watchEventsTotal,
        help: 'Watch events and list items seen by the watcher, by what was decided and why',
        labelNames: ['controller', 'resource', 'type', 'decision', 'reason'],
        registers,
      }),
      controller,
    );
    this.restarts = bindCounter(
      new Counter({
        name: METRIC.watchRestartsTotal,
        help: 'Watches reopened without a relist (server close, timeout, silence, error)',
        labelNames: ['controller', 'resource', 'reason'],
        registers,
      }),
      controller,
    );
    this.relists = bindCounter(
      new Counter({
        name: METRIC.watchRelistsTotal,
        help: 'Full lists of a resource, by why they happened',
        labelNames: ['controller', 'resource', 'reason'],
        registers,
      }),
      controller,
    );
    this.tracked = bindGauge(
      new Gauge({
        name: METRIC.watchTrackedObjects,
        help: 'Objects whose compact state the watcher holds',
        labelNames: ['controller', 'resource'],
        registers,
      }),
      controller,
    );
    this.enqueued = bindCounter(
      new Counter({
        name: METRIC.watchEnqueuedTotal,
        help: 'Reconcile requests the watcher handed to the queue, by why: event, manual, resync',
        labelNames: ['controller', 'reason'],
        registers,
      }),
      controller,
    );
    this.enqueueFailures = bindCounter(
      new Counter({
        name: METRIC.watchEnqueueFailuresTotal,
        help: 'Batches the queue refused; each is retried with backoff',
        labelNames: ['controller'],
        registers,
      }),
      controller,
    );
    this.synced = bindGauge(
      new Gauge({
        name: METRIC.watchSynced,
        help: '1 once the first list of a resource has been processed',
        labelNames: ['controller', 'resource'],
        registers,
      }),
      controller,
    );
    this.leader = bindGauge(
      new Gauge({
        name: METRIC.watchLeader,
        help: '1 while this replica leads (or runs without election)',
        labelNames: ['controller'],
        registers,
      }),
      controller,
    );
    for (const reason of ['event', 'manual', 'resync']) this.enqueued.inc({ reason }, 0);
    this.enqueueFailures.inc({}, 0);
    this.leader.set({}, 0);
  }

  /** Creates the series of one watched resource at 0. */
  initResource(resource: string, passReasons: readonly string[], dropReasons: readonly string[]): void {
    for (const type of EVENT_TYPES) {
      if (type === 'MALFORMED') {
        this.events.inc({ resource, type, decision: 'drop', reason: 'malformed' }, 0);
        continue;
      }
      for (const reason of passReasons) this.events.inc({ resource, type, decision: 'pass', reason }, 0);
      for (const reason of dropReasons) this.events.inc({ resource, type, decision: 'drop', reason }, 0);
    }
    for (const reason of ['closed', 'silent', 'error', 'throttled']) this.restarts.inc({ resource, reason }, 0);
    for (const reason of ['initial', 'gone', 'expired', 'requested']) this.relists.inc({ resource, reason }, 0);
    this.tracked.set({ resource }, 0);
    this.synced.set({ resource }, 0);
  }
}
