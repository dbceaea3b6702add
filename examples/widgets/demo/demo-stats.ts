// What the demo shows while it runs and sums up at the end: backlog, reconciles/s, event→reconcile latency, drops by predicate, merges, workers.
import {
  type Config,
  closeRedisConnection,
  createRedisConnection,
  type Depth,
  keyOfJobId,
  type Logger,
  type ReconcileQueue,
  type RedisConnection,
} from '@conveyor/shared';
import { QueueEvents } from 'bullmq';
import type { Registry } from 'prom-client';
import type { ReconcileCounts } from './worker-pool.ts';

export interface DemoSnapshot {
  /** Seconds since the demo started its pipeline. */
  elapsedS: number;
  phase: string;
  depth: Depth;
  /** Ready to run: waiting + prioritized + delayed-and-due (what the autoscaler sizes for). */
  backlog: number;
  reconciles: number;
  errors: number;
  reconcilesPerSecond: number;
  /** Event→reconcile latency of the churn's writes, in ms; undefined before any was measured. */
  latencyP50Ms: number | undefined;
  latencyP99Ms: number | undefined;
  latencySamples: number;
  /** Watch events (not list items) the watcher saw, across its streams. */
  eventsSeen: number;
  listed: number;
  /** Events the watcher dropped, by `resource: reason`. */
  dropped: Record<string, number>;
  enqueued: number;
  /** Requests that merged into a waiting, delayed or running job of the same key instead of adding one. */
  merged: number;
  desiredWorkers: number;
  runningWorkers: number;
  /** Reconcile slots running now, when workers are local (active jobs otherwise). */
  workerLabel: string;
}

export interface DemoStatsSources {
  queue: ReconcileQueue;
  config: Config;
  logger: Logger;
  watcherRegistry: Registry;
  /** Reconciles so far, summed over every worker or dispatcher. */
  reconcileCounts(): Promise<ReconcileCounts>;
  workers(): Promise<{ desired: number; running: number; label: string }>;
  /** Requests enqueued outside the watcher (the manual enqueue). */
  extraEnqueued(): number;
}

/**
 * Measures event→reconcile latency for the writes the churn makes: a write to a key starts a clock;
 * the first reconcile of that key to start afterwards stops it (a level-based reconcile reads the
 * object as it is then, so it covers every write before it). Starts are read from BullMQ's event
 * stream (`active`), timestamped by Redis, so this works whatever runs the reconciles (local workers
 * or Lambda). Merges are counted from the same stream (`deduplicated`).
 */
export class DemoStats {
  private readonly sources: DemoStatsSources;
  private readonly events: QueueEvents[];
  private readonly connection: RedisConnection;
  private readonly pending = new Map<string, number>();
  private readonly latencies: number[] = [];
  private readonly startedAt = Date.now();
  private merged = 0;
  private last: { at: number; reconciles: number } | undefined;
  private rate = 0;
  phase = 'starting';

  constructor(sources: DemoStatsSources) {
    this.sources = sources;
    // BullMQ leaves a connection it was given open on close: we own it and close it ourselves.
    this.connection = createRedisConnection(sources.config.redis, { logger: sources.logger, purpose: 'demo statistics' });
    // One event stream per partition of the queue (one unless queue.partitions says otherwise).
    this.events = sources.queue.locations.map(({ name, prefix }) => {
      const events = new QueueEvents(name, { connection: this.connection, prefix, autorun: true });
      events.on('active', ({ jobId }, id) => this.started(jobId, id));
      events.on('deduplicated', () => {
        this.merged += 1;
      });
      return events;
    });
  }

  /** Resolves once the event stream is being read (so no start is missed). */
  async ready(): Promise<void> {
    await Promise.all(this.events.map((events) => events.waitUntilReady()));
  }

  /** A write that must lead to a reconcile of `namespace/name`; the earliest unanswered write counts. */
  wrote(namespace: string, name: string, at = Date.now()): void {
    const key = `${namespace}/${name}`;
    if (!this.pending.has(key)) this.pending.set(key, at);
  }

  /** Writes still waiting for a reconcile to start. */
  get unanswered(): number {
    return this.pending.size;
  }

  async snapshot(): Promise<DemoSnapshot> {
    const now = Date.now();
    const [depth, counts, watch, workers] = await Promise.all([
      this.sources.queue.getDepth(),
      this.sources.reconcileCounts(),
      watcherFigures(this.sources.watcherRegistry),
      this.sources.workers(),
    ]);
    if (this.last !== undefined && now > this.last.at) {
      this.rate = ((counts.total - this.last.reconciles) * 1_000) / (now - this.last.at);
    }
    this.last = { at: now, reconciles: counts.total };
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      elapsedS: (now - this.startedAt) / 1_000,
      phase: this.phase,
      depth,
      backlog: depth.waiting + depth.prioritized + depth.delayedDue,
      reconciles: counts.total,
      errors: counts.errors,
      reconcilesPerSecond: this.rate,
      latencyP50Ms: quantile(sorted, 0.5),
      latencyP99Ms: quantile(sorted, 0.99),
      latencySamples: sorted.length,
      eventsSeen: watch.events,
      listed: watch.listed,
      dropped: watch.dropped,
      enqueued: watch.enqueued + this.sources.extraEnqueued(),
      merged: this.merged,
      desiredWorkers: workers.desired,
      runningWorkers: workers.running,
      workerLabel: workers.label,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.events.map((events) => events.close()));
    await closeRedisConnection(this.connection);
  }

  private started(jobId: string, streamId: string): void {
    const key = keyOfJobId(jobId);
    if (key === undefined) return;
    const name = `${key.namespace}/${key.name}`;
    const since = this.pending.get(name);
    // Stream ids are `<Redis time in ms>-<seq>`: the moment the job became active, on the same clock.
    const at = Number(streamId.split('-')[0]);
    if (since === undefined || !Number.isFinite(at) || at < since) return;
    this.pending.delete(name);
    this.latencies.push(at - since);
  }
}

function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function watcherFigures(registry: Registry) {
  const events = (await registry.getSingleMetric('conveyor_watch_events_total')?.get())?.values ?? [];
  const enqueued = (await registry.getSingleMetric('conveyor_watch_enqueued_total')?.get())?.values ?? [];
  let seen = 0;
  let listed = 0;
  const dropped: Record<string, number> = {};
  for (const v of events) {
    if (v.labels.type === 'LISTED') listed += v.value;
    else seen += v.value;
    if (v.labels.decision === 'drop' && v.value > 0 && v.labels.type !== 'LISTED') {
      const label = `${v.labels.resource}: ${v.labels.reason}`;
      dropped[label] = (dropped[label] ?? 0) + v.value;
    }
  }
  return { events: seen, listed, dropped, enqueued: enqueued.reduce((sum, v) => sum + v.value, 0) };
}
