import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defineController, formatKey, type KubeObject, keyOf, type ObjectKey, type StoredObject } from '@conveyor/shared';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import { Redis } from 'ioredis';
import widgets, { IS_PALETTE_LABEL, PALETTE_LABEL, paletteOf, WIDGET_FINALIZER, type Widget, type WidgetDeps } from './controller.ts';
import { ExampleRecords } from './example-records.ts';
import { CONFIGMAPS, startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from './widget-harness.ts';

// Full acceptance sizes: about 15 s on an idle 2-core machine; the generous waits are for a busy one.
const WIDGET_COUNT = 1_000;
const DELETE_COUNT = 500;

async function reconciledCount(world: WidgetWorld, keys: readonly ObjectKey[]): Promise<number> {
  const list = await world.client.list<Widget>(WIDGETS, 'default');
  const wanted = new Set(keys.map(formatKey));
  return list.items.filter((w) => wanted.has(formatKey(keyOf(WIDGETS, w))) && w.status?.observedGeneration === w.metadata.generation)
    .length;
}

async function successCount(worker: ContainerWorker): Promise<number> {
  const metric = await worker.registry.getSingleMetric('controller_runtime_reconcile_total')?.get();
  return (metric?.values ?? []).filter((v) => v.labels.result === 'success').reduce((sum, v) => sum + v.value, 0);
}

async function reconcileCount(worker: ContainerWorker): Promise<number> {
  const metric = await worker.registry.getSingleMetric('controller_runtime_reconcile_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

describe('Example: the Widget controller on container workers', () => {
  let world: WidgetWorld;
  let worker: ContainerWorker;
  let redis: Redis;
  let records: ExampleRecords;
  let keys: ObjectKey[];

  before(async () => {
    world = await startWidgetWorld({
      worker: { concurrency: 20 },
      queue: { backoff: { base: '50ms', max: '1s' } },
      apiBudget: { qps: 100_000, burst: 1_000 },
    });
    worker = await startContainerWorker({ controller: widgets, config: world.config, kubeConfig: world.sim.kubeConfig() });
    redis = new Redis(world.redis.url);
    records = new ExampleRecords(redis, world.config.redis.prefix);
  });
  after(async () => {
    await worker?.close(1_000);
    redis?.disconnect();
    await world?.close();
  });

  it(`reconciles ${WIDGET_COUNT} Widgets: observedGeneration matches, one child ConfigMap each`, async (t) => {
    keys = await world.createWidgets(WIDGET_COUNT);
    world.sim.resetCounters();
    await world.enqueue(keys);
    // Poll the worker's own counter (cheap) before listing 1,000 objects from the simulator (not cheap).
    await waitFor('a reconcile per Widget', async () => (await successCount(worker)) >= WIDGET_COUNT, 240_000, 250);
    await waitFor('every Widget reconciled', async () => (await reconciledCount(world, keys)) === WIDGET_COUNT, 30_000, 1_000);
    const counters = world.sim.counters();
    const reconciles = await reconcileCount(worker);

    const children = await world.client.list(CONFIGMAPS, 'default', { labelSelector: 'app.kubernetes.io/managed-by=conveyor-widgets' });
    assert.equal(children.items.length, WIDGET_COUNT);
    const owners = new Map<string, number>();
    for (const cm of children.items) {
      const owner = cm.metadata.ownerReferences?.find((o) => o.controller === true);
      assert.equal(owner?.kind, 'Widget');
      owners.set(owner?.uid ?? '', (owners.get(owner?.uid ?? '') ?? 0) + 1);
    }
    assert.equal(owners.size, WIDGET_COUNT, 'each Widget controls exactly one ConfigMap');
    const sample = await world.client.get<Widget>(keys[7] as ObjectKey);
    assert.deepEqual(sample.metadata.finalizers, [WIDGET_FINALIZER]);
    assert.equal(sample.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal(await records.count(), WIDGET_COUNT);
    // The test's own polling lists are not the controller's.
    const workerRequests = counters.total - (counters.byVerb.list ?? 0);
    t.diagnostic(
      `API requests per first reconcile: ${(workerRequests / reconciles).toFixed(2)} (${workerRequests} requests by ${reconciles} reconciles: ${JSON.stringify(counters.byVerb)}, lists by the test)`,
    );
  });

  it('changes nothing when a reconcile has nothing to do (a read and an apply that writes nothing), and writes status exactly once when it does', async () => {
    const key = keys[3] as ObjectKey;
    const childKey = { ...CONFIGMAPS, namespace: 'default', name: 'w-3-widget' };
    const childBefore = await world.client.get(childKey);
    const widgetBefore = await world.client.get(key);
    world.sim.resetCounters();
    let before = await reconcileCount(worker);
    await world.enqueue([key]);
    await waitFor('the no-op reconcile', async () => (await reconcileCount(worker)) > before);
    assert.deepEqual(
      world.sim.counters().entries.map((e) => [e.verb, e.resource, e.code, e.count]),
      [
        ['get', 'widgets', 200, 1],
        ['patch', 'configmaps', 200, 1],
      ],
    );
    assert.equal(
      (await world.client.get(childKey)).metadata.resourceVersion,
      childBefore.metadata.resourceVersion,
      'the child apply changed nothing',
    );
    assert.equal((await world.client.get(key)).metadata.resourceVersion, widgetBefore.metadata.resourceVersion, 'no status write');

    // Someone wipes the Ready condition: the next reconcile puts it back with one status write.
    await world.client.patch(key, { type: 'merge', body: { status: { conditions: null } } }, { subresource: 'status' });
    world.sim.resetCounters();
    before = await reconcileCount(worker);
    await world.enqueue([key]);
    await waitFor('the repairing reconcile', async () => (await reconcileCount(worker)) > before);
    const entries = world.sim.counters().entries.filter((e) => e.resource === 'widgets/status');
    assert.deepEqual(
      entries.map((e) => [e.verb, e.resource, e.code, e.count]),
      [['patch', 'widgets/status', 200, 1]],
    );
    const repaired = await world.client.get<Widget>(key);
    assert.equal(repaired.status?.conditions?.[0]?.type, 'Ready');
  });

  it('serves /healthz and controller-runtime’s metrics on /metrics, without object contents', async () => {
    assert.ok(worker.url !== undefined);
    const health = await fetch(`${worker.url}/healthz`);
    assert.equal(health.status, 200);
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    const success = Number(/^controller_runtime_reconcile_total\{controller="widgets",result="success"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(success >= WIDGET_COUNT, `success count ${success}`);
    for (const name of ['controller_runtime_reconcile_total', 'controller_runtime_reconcile_errors_total', 'workqueue_depth']) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `${name} has no HELP`);
      assert.match(text, new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'), `${name} has no TYPE`);
    }
    for (const line of [
      'controller_runtime_reconcile_total{controller="widgets",result="error"} 0',
      'controller_runtime_reconcile_errors_total{controller="widgets"} 0',
      'workqueue_depth{name="widgets"} 0',
      'controller_runtime_max_concurrent_reconciles{controller="widgets"} 20',
    ]) {
      assert.ok(text.includes(line), `missing ${line}`);
    }
    assert.match(text, /^controller_runtime_reconcile_time_seconds_bucket\{le="0.005",controller="widgets"\} \d+$/m);
    assert.match(text, /^workqueue_queue_duration_seconds_count\{name="widgets"\} \d+$/m);
    assert.match(text, /^conveyor_api_requests_total\{controller="widgets",verb="get",code="2xx"\} \d+$/m);
    assert.ok(!/blue|green|w-\d/.test(text), 'metrics carry no object names or contents');
    assert.ok(!text.includes(world.sim.token), 'metrics carry no token');
  });

  it(`deletes ${DELETE_COUNT} Widgets through finalize, leaving another controller’s finalizer in place`, async () => {
    const doomed = keys.slice(0, DELETE_COUNT);
    const shared = doomed.slice(0, 5);
    for (const key of shared) {
      const w = await world.client.get<Widget>(key);
      await world.client.patch(key, {
        type: 'json',
        operations: [{ op: 'add', path: '/metadata/finalizers/0', value: 'other.example.org/keep' }],
      });
      assert.equal(w.metadata.finalizers?.length, 1);
    }
    for (let i = 0; i < doomed.length; i += 50) await Promise.all(doomed.slice(i, i + 50).map((key) => world.client.delete(key)));
    await world.enqueue(doomed);
    await waitFor(
      'every external record of a deleted Widget removed',
      async () => (await records.count()) === WIDGET_COUNT - DELETE_COUNT,
      180_000,
      250,
    );
    await waitFor(
      'the deleted Widgets gone',
      async () => {
        const left = (await world.client.list<Widget>(WIDGETS, 'default')).items.length;
        return left === WIDGET_COUNT - DELETE_COUNT + shared.length;
      },
      60_000,
      1_000,
    );
    for (const key of shared) {
      const kept: StoredObject<Widget> = await world.client.get<Widget>(key);
      assert.deepEqual(kept.metadata.finalizers, ['other.example.org/keep']);
      assert.ok(kept.metadata.deletionTimestamp !== undefined);
    }
    assert.equal(
      await records.get(formatKey(keys[DELETE_COUNT] as ObjectKey)),
      (await world.client.get<Widget>(keys[DELETE_COUNT] as ObjectKey)).metadata.uid,
    );
  });

  it('retries a finalize that fails twice with backoff, then removes the finalizer', async () => {
    const calls: number[] = [];
    const flaky = defineController<Widget, WidgetDeps>({
      ...widgets,
      name: 'flaky-widgets',
      async finalize(widget, ctx) {
        calls.push(Date.now());
        if (calls.length <= 2) throw new Error(`external system unavailable (call ${calls.length})`);
        await widgets.finalize?.(widget, ctx);
      },
    });
    const flakyWorker = await startContainerWorker({
      controller: flaky,
      config: world.config,
      kubeConfig: world.sim.kubeConfig(),
      http: false,
    });
    try {
      const key = keys[DELETE_COUNT + 1] as ObjectKey;
      await world.client.delete(key);
      const { ReconcileQueue } = await import('@conveyor/shared');
      const queue = new ReconcileQueue({ controller: 'flaky-widgets', redis: world.config.redis, queue: world.config.queue });
      await queue.enqueue({ key, reason: 'event' });
      await waitFor('the Widget gone after finalize succeeded', async () => (await world.client.find(key)) === undefined, 20_000);
      await queue.close();
      assert.equal(calls.length, 3);
      const [a, b, c] = calls as [number, number, number];
      // Backoff base 50 ms doubling, 20 % jitter: at least ~40 ms, then ~80 ms.
      assert.ok(b - a >= 35 && c - b >= 70, `finalize retried after ${b - a} ms and ${c - b} ms`);
      assert.equal(await records.get(formatKey(key)), undefined);
    } finally {
      await flakyWorker.close(1_000);
    }
  });

  it('records a ConfigMapNotOwned Warning Event when the child name is taken by another object’s ConfigMap, and parks the request', async () => {
    const owner = await world.client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'owner-of-taken', namespace: 'default' },
    });
    await world.client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'taken-widget',
        namespace: 'default',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner-of-taken', uid: owner.metadata.uid ?? '', controller: true }],
      },
    });
    await world.client.create<Widget>(WIDGETS, {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'taken', namespace: 'default' },
    });
    const key = { ...WIDGETS, namespace: 'default', name: 'taken' };
    await world.queue.enqueue({ key, reason: 'event' });
    const EVENTS = { group: 'events.k8s.io', version: 'v1', plural: 'events' };
    const reasons = async () =>
      (await world.client.list<KubeObject & { reason?: string; type?: string; regarding?: { name?: string } }>(EVENTS, 'default')).items
        .filter((e) => e.regarding?.name === 'taken')
        .map((e) => `${e.type}/${e.reason}`)
        .sort();
    await waitFor('the Warning Events', async () => (await reasons()).length === 2, 20_000);
    assert.deepEqual(await reasons(), ['Warning/ConfigMapNotOwned', 'Warning/ReconcileParked']);
  });

  it('copies a shared palette into the children of the Widgets whose label names it, writing nothing on the palette', async () => {
    const palette = await world.client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'team-palette', namespace: 'default', labels: { [IS_PALETTE_LABEL]: 'true' } },
      data: { palette: 'sunrise', notes: 'not read' },
    });
    const created = await Promise.all(
      ['p-1', 'p-2'].map((name) =>
        world.client.create<Widget>(WIDGETS, {
          apiVersion: 'example.com/v1',
          kind: 'Widget',
          metadata: { name, namespace: 'default', labels: { [PALETTE_LABEL]: 'team-palette' } },
          spec: { color: 'red' },
        }),
      ),
    );
    assert.equal(paletteOf(created[0] as Widget), 'team-palette');
    const paletteKeys = created.map((w) => keyOf(WIDGETS, w));
    const childPalette = async (name: string) =>
      (await world.client.get<{ data?: Record<string, string> }>({ ...CONFIGMAPS, namespace: 'default', name: `${name}-widget` })).data
        ?.palette;
    await world.enqueue(paletteKeys);
    await waitFor('both children with the palette', async () => (await reconciledCount(world, paletteKeys)) === 2);
    assert.equal(await childPalette('p-1'), 'sunrise');

    await world.client.patch(keyOf(CONFIGMAPS, palette), { type: 'merge', body: { data: { palette: 'sunset' } } });
    await world.enqueue(paletteKeys);
    await waitFor(
      'children follow the palette',
      async () => (await childPalette('p-1')) === 'sunset' && (await childPalette('p-2')) === 'sunset',
    );
    assert.equal((await world.client.get(keyOf(CONFIGMAPS, palette))).metadata.annotations, undefined);
  });
});
