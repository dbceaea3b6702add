import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type ControllerSpec, createLogger, dataKeys, formatKey } from '@conveyor/shared';
import { FakeApi, routeTransport } from '@conveyor/test/fakes/fake-kube-transport';
import { waitFor } from '@conveyor/test/support/wait-for';
import { Registry } from 'prom-client';
import type { WatcherRequest } from './enqueue-buffer.ts';
import { type CursorStore, Watcher, type WatcherOptions, type WatcherQueue } from './watcher.ts';

const logger = createLogger({ level: 'silent' });
const WIDGETS = '/apis/example.com/v1/widgets';
const DEPLOYMENTS = '/apis/apps/v1/deployments';
const CONFIGMAPS = '/api/v1/configmaps';
const widgets = { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' };

/** An in-memory queue: every request it was handed, and scripted epoch losses. */
class MemoryQueue implements WatcherQueue {
  requests: WatcherRequest[] = [];
  epochLost = false;
  parkedRetries = 0;
  async enqueueBatch(requests: readonly WatcherRequest[]) {
    this.requests.push(...requests);
  }
  async checkEpoch() {
    const lost = this.epochLost;
    this.epochLost = false;
    return lost;
  }
  async retryParked() {
    this.parkedRetries++;
    return 0;
  }
  names(reason?: string): string[] {
    return this.requests.filter((r) => reason === undefined || r.reason === reason).map((r) => r.key.name);
  }
  clear() {
    this.requests = [];
  }
}

class MemoryCursor implements CursorStore {
  readonly values = new Map<string, string>();
  async get(stream: string) {
    return this.values.get(stream);
  }
  async set(stream: string, rv: string) {
    this.values.set(stream, rv);
  }
}

/** Waits until nothing new is enqueued for a while (the watcher has caught up). */
async function settle(queue: MemoryQueue, quietMs = 60): Promise<void> {
  let last = -1;
  while (last !== queue.requests.length) {
    last = queue.requests.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
}

const running: Watcher[] = [];
after(async () => {
  await Promise.all(running.map((w) => w.stop(100)));
});

async function startWatcher(controller: Partial<ControllerSpec>, routes: Record<string, FakeApi>, extra: Partial<WatcherOptions> = {}) {
  const queue = (extra.queue as MemoryQueue | undefined) ?? new MemoryQueue();
  const registry = new Registry();
  const watcher = new Watcher({
    controller: { name: 'widgets', for: widgets, ...controller },
    transport: routeTransport(routes),
    queue,
    registry,
    logger,
    streamingList: 'never',
    resyncPeriodMs: 0,
    cursorIntervalMs: 10,
    epochCheckMs: 10,
    ...extra,
  });
  running.push(watcher);
  await watcher.start();
  await watcher.waitReady(5_000);
  await settle(queue);
  return { watcher, queue, registry };
}

function seed(api: FakeApi, n: number, meta: (i: number) => Record<string, unknown> = () => ({})) {
  for (let i = 0; i < n; i++) api.create(`w-${i}`, meta(i));
}

function dupes(names: string[]): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  for (const n of names) {
    if (seen.has(n)) repeated.push(n);
    seen.add(n);
  }
  return repeated;
}

describe('Watcher', () => {
  it('enqueues every key once on the first sync; status-only changes nothing; a spec change once; labels only with the labels predicate', async () => {
    const api = new FakeApi();
    seed(api, 1000);
    const { queue, watcher, registry } = await startWatcher({ predicates: ['generation'] }, { [WIDGETS]: api });
    assert.equal(queue.requests.length, 1000);
    assert.deepEqual(dupes(queue.names()), []);
    assert.equal(queue.requests[0] && formatKey(queue.requests[0].key), 'example.com/v1/widgets/default/w-0');
    queue.clear();

    api.update('w-1', {}); // status only: new resourceVersion, same generation
    api.update('w-2', { labels: { tier: 'gold' } });
    api.update('w-3', { generation: 2 });
    // A quiet spell alone can end before a loaded machine delivers the events: first see the watcher decide all three.
    const modified = async () =>
      ((await registry.getMetricsAsJSON()).find((m) => m.name === 'conveyor_watch_events_total')?.values ?? [])
        .filter((v) => v.labels.type === 'MODIFIED')
        .reduce((sum, v) => sum + v.value, 0);
    await waitFor('the three edits decided', async () => (await modified()) === 3);
    await settle(queue);
    assert.deepEqual(queue.names(), ['w-3']);
    const metrics = await registry.getMetricsAsJSON();
    const events = metrics.find((m) => m.name === 'conveyor_watch_events_total');
    const value = (labels: Record<string, string>) =>
      events?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    assert.equal(value({ type: 'MODIFIED', decision: 'drop', reason: 'filtered' }), 2);
    assert.equal(value({ type: 'MODIFIED', decision: 'pass', reason: 'generation' }), 1);
    assert.equal(value({ type: 'LISTED', decision: 'pass', reason: 'created' }), 1000);
    assert.equal(value({ type: 'DELETED', decision: 'pass', reason: 'vanished' }), 0, 'series exist at 0 before anything happens');
    await watcher.stop();

    const withLabels = new FakeApi();
    seed(withLabels, 3);
    const second = await startWatcher({ predicates: ['generation', 'labels'] }, { [WIDGETS]: withLabels });
    second.queue.clear();
    withLabels.update('w-2', { labels: { tier: 'gold' } });
    await waitFor('the label edit enqueued', () => second.queue.names().length > 0);
    await settle(second.queue);
    assert.deepEqual(second.queue.names(), ['w-2']);
  });

  it('after a restart, enqueues exactly the objects that changed while it was down (cursor in the store)', async () => {
    const api = new FakeApi();
    seed(api, 50);
    const cursor = new MemoryCursor();
    const first = await startWatcher({}, { [WIDGETS]: api }, { cursor });
    api.update('w-1', { generation: 2 });
    await settle(first.queue);
    await waitFor('the cursor', () => cursor.values.get('widgets.example.com|all') === String(api.rv));
    await first.watcher.stop();

    api.update('w-7', { generation: 2 });
    api.update('w-8', { finalizers: [], deletionTimestamp: '2026-01-01T00:00:00Z' });
    api.create('w-new');
    const second = await startWatcher({}, { [WIDGETS]: api }, { cursor });
    assert.deepEqual(second.queue.names().sort(), ['w-7', 'w-8', 'w-new']);
  });

  it('on a relist after 410, enqueues keys deleted during the gap', async () => {
    const api = new FakeApi();
    seed(api, 5);
    const { queue } = await startWatcher({}, { [WIDGETS]: api });
    queue.clear();
    // Simulate a gap: the watch breaks, objects go away unseen, the history no longer reaches back.
    api.closeWatches();
    api.objects.delete('w-3');
    api.rv += 3;
    api.compact();
    api.closeWatches();
    await waitFor('the vanished key', () => queue.names().includes('w-3'));
    await settle(queue);
    assert.deepEqual(queue.names(), ['w-3']);
  });

  it('two shards together enqueue every key exactly once; going from 2 to 3 shards leaves no key uncovered', async () => {
    const api = new FakeApi();
    seed(api, 300);
    const a = await startWatcher({}, { [WIDGETS]: api }, { shard: { index: 0, count: 2 } });
    const b = await startWatcher({}, { [WIDGETS]: api }, { shard: { index: 1, count: 2 } });
    const both = [...a.queue.names(), ...b.queue.names()];
    assert.equal(both.length, 300);
    assert.equal(new Set(both).size, 300);
    assert.ok(a.queue.requests.length > 100 && b.queue.requests.length > 100);

    const c = await startWatcher({}, { [WIDGETS]: api }, { shard: { index: 2, count: 3 } });
    a.watcher.reshard({ index: 0, count: 3 });
    b.watcher.reshard({ index: 1, count: 3 });
    await waitFor('relists', () => a.watcher.ready && b.watcher.ready);
    await settle(a.queue);
    await settle(b.queue);
    const covered = new Set([...a.queue.names(), ...b.queue.names(), ...c.queue.names()]);
    assert.equal(covered.size, 300);
    // Each replica now holds only its third.
    assert.equal(a.watcher.tracked + b.watcher.tracked + c.watcher.tracked, 300);
  });

  it('enqueues the owner when an owned child changes, including a status-only change', async () => {
    const parents = new FakeApi();
    seed(parents, 2);
    const children = new FakeApi();
    const owner = (name: string) => [{ apiVersion: 'example.com/v1', kind: 'Widget', name, uid: `uid-${name}`, controller: true }];
    children.create('w-0-deploy', { ownerReferences: owner('w-0') });
    children.create('stray', {});
    const { queue } = await startWatcher(
      { owns: [{ group: 'apps', version: 'v1', plural: 'deployments' }] },
      { [WIDGETS]: parents, [DEPLOYMENTS]: children },
    );
    queue.clear();
    children.update('w-0-deploy', {}); // status only
    children.update('stray', {});
    await settle(queue);
    assert.deepEqual(queue.names(), ['w-0']);
  });

  it('maps a ConfigMap to its dependents only when a chosen data key changes', async () => {
    const parents = new FakeApi();
    seed(parents, 500);
    const configMaps = new FakeApi();
    configMaps.create('global', {}, { data: { special: '1', other: 'a' } });
    const { queue } = await startWatcher(
      {
        watches: [
          {
            resource: { group: '', version: 'v1', plural: 'configmaps' },
            fields: 'metadata.name=global',
            map: () => Array.from({ length: 500 }, (_, i) => ({ name: `w-${i}` })),
            changed: dataKeys(['special']),
          },
        ],
      },
      { [WIDGETS]: parents, [CONFIGMAPS]: configMaps },
    );
    queue.clear();
    configMaps.update('global', {}, { data: { special: '1', other: 'b' } });
    await settle(queue);
    assert.equal(queue.requests.length, 0, 'an irrelevant key enqueues nothing');
    configMaps.update('global', {}, { data: { special: '2', other: 'b' } });
    await settle(queue);
    assert.equal(queue.requests.length, 500);
    assert.equal(new Set(queue.names()).size, 500);
    const cmWatch = configMaps.requests.find((r) => r.kind === 'watch');
    assert.equal(cmWatch?.accept, 'application/json', 'a changed-keys watch reads whole objects');
    assert.equal(cmWatch?.query.fieldSelector, 'metadata.name=global');
  });

  it('relists and enqueues every key when the queue reports an epoch loss', async () => {
    const api = new FakeApi();
    seed(api, 40);
    const { queue } = await startWatcher({}, { [WIDGETS]: api });
    queue.clear();
    queue.epochLost = true;
    await waitFor('every key again', () => new Set(queue.names()).size === 40);
  });

  it('resyncs every key once per period at resync priority, counted as resync, and retries parked requests', async () => {
    const api = new FakeApi();
    seed(api, 30);
    const { queue, registry } = await startWatcher({}, { [WIDGETS]: api }, { resyncPeriodMs: 300 });
    await waitFor('a full resync period', () => new Set(queue.names('resync')).size === 30, 3_000);
    assert.ok(queue.parkedRetries >= 1);
    const enqueued = async (reason: string) =>
      (await registry.getSingleMetric('conveyor_watch_enqueued_total')?.get())?.values.find((v) => v.labels.reason === reason)?.value;
    await waitFor('the resync requests counted', async () => ((await enqueued('resync')) ?? 0) >= 30);
    assert.equal(await enqueued('event'), 30, 'only the first sync counts as events: no edit happened');
  });
});
