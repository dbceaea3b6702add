// The watcher's Prometheus metrics: events by decision and reason, restarts, relists, tracked objects — every known series created at 0.
import { METRIC } from '@conveyor/shared';
import { Counter, Gauge, type Registry } from 'prom-client';

export const EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'LISTED', 'MALFORMED'] as const;
export type MetricEventType = (typeof EVENT_TYPES)[number];

export class WatcherMetrics {
  readonly events: Counter<'resource' | 'type' | 'decision' | 'reason'>;
  readonly restarts: Counter<'resource' | 'reason'>;
  readonly relists: Counter<'resource' | 'reason'>;
  readonly tracked: Gauge<'resource'>;
  readonly enqueued: Counter<'reason'>;
  readonly enqueueFailures: Counter;
  readonly synced: Gauge<'resource'>;
  readonly leader: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: METRIC.watchEventsTotal,
      help: 'Watch events and list items seen by the watcher, by what was decided and why',
      labelNames: ['resource', 'type', 'decision', 'reason'],
      registers,
    });
    this.restarts = new Counter({
      name: METRIC.watchRestartsTotal,
      help: 'Watches reopened without a relist (server close, timeout, silence, error)',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.relists = new Counter({
      name: METRIC.watchRelistsTotal,
      help: 'Full lists of a resource, by why they happened',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.tracked = new Gauge({
      name: METRIC.watchTrackedObjects,
      help: 'Objects whose compact state the watcher holds',
      labelNames: ['resource'],
      registers,
    });
    this.enqueued = new Counter({
      name: METRIC.watchEnqueuedTotal,
      help: 'Reconcile requests the watcher handed to the queue',
      labelNames: ['reason'],
      registers,
    });
    this.enqueueFailures = new Counter({
      name: METRIC.watchEnqueueFailuresTotal,
      help: 'Batches the queue refused; each is retried with backoff',
      registers,
    });
    this.synced = new Gauge({
      name: METRIC.watchSynced,
      help: '1 once the first list of a resource has been processed',
      labelNames: ['resource'],
      registers,
    });
    this.leader = new Gauge({ name: METRIC.watchLeader, help: '1 while this replica leads (or runs without election)', registers });
    for (const reason of ['event', 'manual', 'resync']) this.enqueued.inc({ reason }, 0);
    this.enqueueFailures.inc(0);
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
