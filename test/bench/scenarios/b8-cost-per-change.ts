// B8 cost per change: reconciles and API requests per change of each kind, with the Widget example on the simulator (watcher and a container worker), with own-write suppression and without it (the reference, today's behaviour elsewhere) in the same run.
import { createMetricsRegistry, createRedisConnection, KubeApiClient, type ObjectKey, OwnWriteLookup } from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import type { Registry } from 'prom-client';
import widgets, { childName, type Widget } from '../../../examples/widgets/controller.ts';
import { reconcileCountsOf } from '../../../examples/widgets/demo/worker-pool.ts';
import { CONFIGMAPS, startWidgetWorld, WIDGETS, type WidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import { atLeast, atMost, bySize, Cleanups, round, type Scenario, type SizeName, silentLogger, until } from '../bench-support.ts';

/** The kinds of change, in the order a run makes them. */
const KINDS = [
  'create',
  'spec edit',
  'status-only edit',
  'label edit',
  'child edited by someone else',
  'resync (unchanged)',
  'delete',
] as const;
type Kind = (typeof KINDS)[number];
/** How a kind names its details (`specEditReconciles`): report placeholders take word characters only. */
const DETAIL_NAME: Record<Kind, string> = {
  create: 'create',
  'spec edit': 'specEdit',
  'status-only edit': 'statusEdit',
  'label edit': 'labelEdit',
  'child edited by someone else': 'childEditedByOthers',
  'resync (unchanged)': 'resync',
  delete: 'delete',
};

interface Cost {
  changes: number;
  reconciles: number;
  requests: number;
  /** Watch events of the child ConfigMaps (the spec edit phase: every one is a write of the controller's own). */
  childEvents: number;
  /** Of those, the ones that enqueued their owner. */
  childEventsEnqueued: number;
}

/** One pipeline: a simulator, a private Redis, the example's watcher and one container worker. */
interface Pipeline {
  world: WidgetWorld;
  worker: ContainerWorker;
  watcherRegistry: Registry;
}

const sum = async (registry: Registry, name: string, labels: Record<string, string> = {}) => {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((s, v) => s + v.value, 0);
};

async function startPipeline(suppress: boolean, cleanups: Cleanups): Promise<Pipeline> {
  const world = await startWidgetWorld({
    log: { level: 'error' },
    apiBudget: { qps: 100_000, burst: 10_000 },
    worker: { concurrency: 20 },
    queue: { backoff: { base: '50ms', max: '1s' } },
    watcher: { ignoreOwnWrites: suppress },
  });
  cleanups.add(() => world.close());
  const worker = await startContainerWorker({
    controller: widgets,
    config: world.config,
    kubeConfig: world.sim.kubeConfig(),
    logger: silentLogger,
    http: false,
  });
  cleanups.add(() => worker.close(5_000));
  const redis = createRedisConnection(world.config.redis, { logger: silentLogger, purpose: 'bench' });
  cleanups.add(() => redis.disconnect());
  const watcherRegistry = createMetricsRegistry();
  const watcher = new Watcher({
    controller: widgets,
    transport: new KubeApiClient({ kubeConfig: world.sim.kubeConfig() }),
    queue: world.queue,
    registry: watcherRegistry,
    logger: silentLogger,
    resyncPeriodMs: 0,
    ownWrites: suppress ? new OwnWriteLookup(redis, { prefix: world.config.redis.prefix, controller: widgets.name }) : undefined,
  });
  cleanups.add(() => watcher.stop(2_000));
  await watcher.start();
  await watcher.waitReady(60_000);
  return { world, worker, watcherRegistry };
}

/** What the counters say now: reconciles run, API requests the worker made, child watch events. */
async function snapshot(p: Pipeline) {
  return {
    reconciles: (await reconcileCountsOf(p.worker)).total,
    requests: await sum(p.worker.registry, 'conveyor_api_requests_total'),
    childEvents: await sum(p.watcherRegistry, 'conveyor_watch_events_total', { resource: 'configmaps' }),
    childEventsEnqueued: await sum(p.watcherRegistry, 'conveyor_watch_events_total', { resource: 'configmaps', decision: 'pass' }),
    events: await sum(p.watcherRegistry, 'conveyor_watch_events_total'),
  };
}

/** Waits until nothing is queued or running and no reconcile or watch event happened for half a second. */
async function quiet(p: Pipeline): Promise<void> {
  let last = '';
  let stableSince = Date.now();
  await until(
    'the pipeline quiet',
    async () => {
      const d = await p.world.queue.getDepth();
      const s = await snapshot(p);
      const now = JSON.stringify([d.waiting, d.prioritized, d.delayedDue, d.delayedLater, d.active, s.reconciles, s.events]);
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
      return d.waiting + d.prioritized + d.delayedDue + d.delayedLater + d.active === 0 && Date.now() - stableSince >= 500;
    },
    300_000,
    50,
  );
}

/** Makes `changes` changes of one kind with `change`, waits for `done` and quiet, and returns what they cost. */
async function measure(p: Pipeline, changes: number, change: () => Promise<void>, done: () => Promise<boolean>): Promise<Cost> {
  const before = await snapshot(p);
  await change();
  await until('the changes reconciled', done, 300_000, 100);
  await quiet(p);
  const after = await snapshot(p);
  return {
    changes,
    reconciles: after.reconciles - before.reconciles,
    requests: after.requests - before.requests,
    childEvents: after.childEvents - before.childEvents,
    childEventsEnqueued: after.childEventsEnqueued - before.childEventsEnqueued,
  };
}

/** Runs every kind of change over `n` Widgets on one pipeline. */
async function costs(n: number, suppress: boolean, log: (line: string) => void): Promise<Map<Kind, Cost>> {
  const cleanups = new Cleanups();
  try {
    const p = await startPipeline(suppress, cleanups);
    const { world } = p;
    const client = world.client;
    const names = Array.from({ length: n }, (_, i) => `w-${i}`);
    const key = (name: string): ObjectKey => ({ ...WIDGETS, namespace: 'default', name });
    const inBatches = async (fn: (name: string) => Promise<unknown>) => {
      for (let i = 0; i < n; i += 50) await Promise.all(names.slice(i, i + 50).map(fn));
    };
    const widgetsNow = async () => (await client.list<Widget>(WIDGETS, 'default')).items;
    const observed = async () => (await widgetsNow()).filter((w) => w.status?.observedGeneration === w.metadata.generation).length === n;
    const result = new Map<Kind, Cost>();
    const phase = async (kind: Kind, change: () => Promise<void>, done: () => Promise<boolean> = async () => true) => {
      result.set(kind, await measure(p, n, change, done));
      log(`B8 (${suppress ? 'own writes dropped' : 'reference'}): ${kind}: ${JSON.stringify(result.get(kind))}`);
    };

    await phase('create', () => world.createWidgets(n).then(() => undefined), observed);
    await phase(
      'spec edit',
      () => inBatches((name) => client.patch(key(name), { type: 'merge', body: { spec: { size: 10_000 } } })),
      observed,
    );
    await phase('status-only edit', () =>
      inBatches((name) =>
        client.patch(key(name), { type: 'merge', body: { status: { lastAudited: new Date().toISOString() } } }, { subresource: 'status' }),
      ),
    );
    await phase('label edit', () =>
      inBatches((name) =>
        client.patch(key(name), { type: 'merge', body: { metadata: { labels: { 'bench.conveyor.dev/touched': 'yes' } } } }),
      ),
    );
    const child = (name: string) => ({ ...CONFIGMAPS, namespace: 'default', name: childName({ metadata: { name } }) });
    const childrenRestored = async () => {
      const list = await client.list<{ data?: Record<string, string> }>(CONFIGMAPS, 'default');
      return list.items.filter((cm) => cm.data?.color === 'tampered').length === 0;
    };
    await phase(
      'child edited by someone else',
      () => inBatches((name) => client.patch(child(name), { type: 'merge', body: { data: { color: 'tampered' } } })),
      childrenRestored,
    );
    await phase('resync (unchanged)', () => world.queue.enqueueBatch(names.map((name) => ({ key: key(name), reason: 'resync' as const }))));
    await phase(
      'delete',
      () => inBatches((name) => client.delete(key(name))),
      async () => (await widgetsNow()).length === 0,
    );
    return result;
  } finally {
    await cleanups.run();
  }
}

const perChange = (cost: Cost | undefined, what: 'reconciles' | 'requests') =>
  cost === undefined || cost.changes === 0 ? Number.NaN : round(cost[what] / cost.changes, 3);

/** Reconciles caused by the controller's own child writes: the spec edits' reconciles beyond one per edit, per child write. */
function ownChildWriteReconciles(costs: Map<Kind, Cost>): number {
  const spec = costs.get('spec edit');
  if (spec === undefined || spec.childEvents === 0) return Number.NaN;
  return round(Math.max(0, spec.reconciles - spec.changes) / spec.childEvents, 3);
}

/** Per kind: reconciles and API requests per change (`specEditReconciles`, `referenceSpecEditRequests`). */
function detailsOf(reference: boolean, costs: Map<Kind, Cost>): Record<string, number> {
  const name = (what: string) => (reference ? `reference${what[0]?.toUpperCase()}${what.slice(1)}` : what);
  const out: Record<string, number> = {};
  for (const kind of KINDS) {
    const cost = costs.get(kind);
    out[name(`${DETAIL_NAME[kind]}Reconciles`)] = perChange(cost, 'reconciles');
    out[name(`${DETAIL_NAME[kind]}Requests`)] = perChange(cost, 'requests');
  }
  out[name('ownChildWriteReconciles')] = ownChildWriteReconciles(costs);
  out[name('ownChildWriteEventsEnqueued')] = costs.get('spec edit')?.childEventsEnqueued ?? Number.NaN;
  return out;
}

const totalPerChange = (costs: Map<Kind, Cost>) => {
  let reconciles = 0;
  let changes = 0;
  for (const cost of costs.values()) {
    reconciles += cost.reconciles;
    changes += cost.changes;
  }
  return round(reconciles / changes, 3);
};

export const costPerChange: Scenario = async ({ size, log }) => {
  const n = bySize<number>(size as SizeName, { tiny: 20, default: 200, large: 1_000 });
  log(`B8: ${n} Widgets through every kind of change, with own-write suppression and without`);
  const on = await costs(n, true, log);
  const off = await costs(n, false, log);
  const figure = totalPerChange(on);
  const reference = totalPerChange(off);
  const r = (kind: Kind) => perChange(on.get(kind), 'reconciles');
  const q = (kind: Kind) => perChange(on.get(kind), 'requests');
  return {
    id: 'B8',
    title: 'Cost per change',
    setup: `${n} Widgets, the example controller (examples/widgets/controller.ts) with its watcher and one container worker (20 slots, no API budget in the way) on the simulator; each kind of change made to every Widget in turn, the pipeline left to go quiet after each; run twice, with own-write suppression (watcher.ignoreOwnWrites) and without it`,
    figure: { label: 'reconciles per change, every kind', value: figure, unit: 'reconciles/change' },
    reference: { label: 'the same without own-write suppression', value: reference, unit: 'reconciles/change' },
    ratio: round(figure / reference, 3),
    goal: {
      text: 'reconciles per change ≤ 1.05 for create, spec edit and delete; 0 for status-only and label edits and per own child write; ≥ 1 for someone else’s child edit. API requests per change ≤ 4 for create, ≤ 3 for a spec edit, ≤ 2 for a resync of an unchanged Widget',
      checks: [
        atMost('create: reconciles per change', r('create'), 1.05),
        atMost('spec edit: reconciles per change', r('spec edit'), 1.05),
        atMost('delete: reconciles per change', r('delete'), 1.05),
        atMost('status-only edit: reconciles per change', r('status-only edit'), 0),
        atMost('label edit: reconciles per change', r('label edit'), 0),
        atMost('own child write: reconciles per write', ownChildWriteReconciles(on), 0),
        atLeast('child edited by someone else: reconciles per change', r('child edited by someone else'), 1),
        atMost('create: API requests per change', q('create'), 4),
        atMost('spec edit: API requests per change', q('spec edit'), 3),
        atMost('resync (unchanged): API requests per change', q('resync (unchanged)'), 2),
      ],
    },
    details: { widgets: n, ...detailsOf(false, on), ...detailsOf(true, off) },
    chart: {
      title: `B8: reconciles per change, ${n} Widgets`,
      unit: 'reconciles/change',
      bars: KINDS.flatMap((kind) => [
        { label: `${kind} (reference)`, value: perChange(off.get(kind), 'reconciles') },
        { label: kind, value: perChange(on.get(kind), 'reconciles') },
      ]),
    },
    notes: [
      "Details are per change: `<kind>Reconciles` and `<kind>Requests` with own-write suppression, `reference…` without. API requests are the worker's (its conveyor_api_requests_total), not the watcher's list and watch nor the benchmark's own writes. A first reconcile reads the Widget, adds the finalizer, applies the child and applies status ({createRequests}); a spec edit reads, applies the child and applies status ({specEditRequests}); a resync of an unchanged Widget reads and applies the child, which changes nothing ({resyncRequests}). Without suppression a create costs {referenceCreateReconciles} reconciles and a spec edit {referenceSpecEditReconciles}: the events of the finalizer's and the child's writes wake the controller again.",
      "Own child writes: in the spec edit phase every child ConfigMap event is the controller's own apply ({ownChildWriteEventsEnqueued} of them enqueued their owner; {referenceOwnChildWriteEventsEnqueued} without suppression), and the phase's reconciles beyond one per edit, per such write, are their cost ({ownChildWriteReconciles}; {referenceOwnChildWriteReconciles} without).",
      "Both runs drop the events of children whose owner the watcher no longer holds or is finalizing (garbage collection after a delete, whose child deletes can reach the watcher before the owner's own DELETED event): that is not part of own-write suppression.",
    ],
  };
};
