import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  fieldManagerOf,
  KubeApiClient,
  type KubeTransport,
  OwnWriteLookup,
  OwnWriteRecorder,
  type OwnWriteVerdict,
  type Query,
  type StoredObject,
} from '@conveyor/shared';
import { jobLockKey } from '@conveyor/shared/queue/bullmq-internals';
import { controllerKeys } from '@conveyor/shared/queue/redis-keys';
import {
  metricValue,
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  WIDGETS,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };
const CONTROLLER = 'widgets';

/** The simulator's transport, but watch lines can be held back and released in order: a slow network between the API server and the watcher. */
class HoldingTransport implements KubeTransport {
  private held: (() => void)[] | undefined;
  private readonly inner: KubeApiClient;
  constructor(inner: KubeApiClient) {
    this.inner = inner;
  }
  hold(): void {
    this.held = [];
  }
  release(): void {
    const lines = this.held ?? [];
    this.held = undefined;
    for (const deliver of lines) deliver();
  }
  getJson(path: string, query: Query, accept: string, signal?: AbortSignal): Promise<unknown> {
    return this.inner.getJson(path, query, accept, signal);
  }
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    return this.inner.request(method, path, body, signal);
  }
  stream(path: string, query: Query, accept: string, signal: AbortSignal, onLine: (line: string) => void): Promise<void> {
    return this.inner.stream(path, query, accept, signal, (line) => {
      if (this.held === undefined) onLine(line);
      else this.held.push(() => onLine(line));
    });
  }
}

/** The real lookup, remembering every verdict it gave per resourceVersion, so a test can see an event being held. */
class RecordingLookup {
  readonly verdicts = new Map<string, OwnWriteVerdict[]>();
  private readonly inner: OwnWriteLookup;
  constructor(inner: OwnWriteLookup) {
    this.inner = inner;
  }
  async check(events: readonly { id: string; resourceVersion: string }[]): Promise<OwnWriteVerdict[]> {
    const answers = await this.inner.check(events);
    for (const [i, e] of events.entries())
      this.verdicts.set(e.resourceVersion, [...(this.verdicts.get(e.resourceVersion) ?? []), answers[i] as OwnWriteVerdict]);
    return answers;
  }
}

describe('Watcher on the simulator: the controller’s own writes', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;
  let transport: HoldingTransport;
  let recorder: OwnWriteRecorder;
  /** A client as the workers have it: field manager conveyor-widgets, writes recorded (no queue lock: always recorded). */
  let ours: KubeApiClient;
  /** Anyone else: a user, another controller. */
  let theirs: KubeApiClient;
  let owner: StoredObject;
  let lookup: RecordingLookup;

  const child = (name: string, data: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: 'default',
      ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w-1', uid: owner.metadata.uid ?? '', controller: true }],
    },
    data,
  });
  const events = (labels: Record<string, string>) => metricValue(started.registry, 'conveyor_watch_events_total', labels);
  /** Someone else's spec edit of `w-2`: once its request is in the queue, every request decided before it is too. */
  const barrier = async () => {
    const mark = started.queue.keys.length;
    await theirs.patch({ ...WIDGETS, namespace: 'default', name: 'w-2' }, { type: 'merge', body: { spec: { size: randomUUID() } } });
    await waitFor('the barrier event enqueued', () => started.queue.keys.slice(mark).includes(widgetKey('w-2')));
  };
  const enqueuedSince = (mark: number) => started.queue.keys.slice(mark).filter((k) => k !== widgetKey('w-2'));

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(3);
    const kubeConfig = world.sim.kubeConfig();
    theirs = new KubeApiClient({ kubeConfig });
    recorder = new OwnWriteRecorder(world.connection, { prefix: world.prefix, controller: CONTROLLER });
    ours = new KubeApiClient({ kubeConfig, fieldManager: fieldManagerOf(CONTROLLER), resources: [WIDGETS, CONFIGMAPS] }).withWrites(
      recorder.forRun(),
    );
    owner = await theirs.get({ ...WIDGETS, namespace: 'default', name: 'w-1' });
    transport = new HoldingTransport(new KubeApiClient({ kubeConfig }));
    lookup = new RecordingLookup(new OwnWriteLookup(world.connection, { prefix: world.prefix, controller: CONTROLLER }));
    started = await world.startWatcher({
      controller: { name: CONTROLLER, predicates: ['generation'], owns: [CONFIGMAPS], finalizer: 'example.com/cleanup' },
      settings: { transport, ownWrites: lookup },
    });
  });
  after(async () => {
    await world?.close();
  });

  it('enqueues nothing for its own child apply and finalizer patch, and counts them as own-write', async () => {
    const mark = started.queue.keys.length;
    await ours.apply(child('w-1-child', { color: 'red' }));
    await ours.patch(
      { ...WIDGETS, namespace: 'default', name: 'w-1' },
      { type: 'json', operations: [{ op: 'add', path: '/metadata/finalizers', value: ['example.com/cleanup'] }] },
    );
    await barrier();
    assert.deepEqual(enqueuedSince(mark), []);
    assert.equal(await events({ resource: 'configmaps', type: 'ADDED', decision: 'drop', reason: 'own-write' }), 1);
    assert.equal(await events({ resource: 'widgets.example.com', type: 'MODIFIED', decision: 'drop', reason: 'own-write' }), 1);
  });

  it('enqueues the owner for someone else’s edit of the child, even one that lands between our write and its event', async () => {
    const mark = started.queue.keys.length;
    const ownBefore = await events({ resource: 'configmaps', decision: 'drop', reason: 'own-write' });
    transport.hold();
    await ours.apply(child('w-1-child', { color: 'green' }));
    await theirs.patch({ ...CONFIGMAPS, namespace: 'default', name: 'w-1-child' }, { type: 'merge', body: { data: { color: 'blue' } } });
    transport.release();
    await barrier();
    assert.deepEqual(enqueuedSince(mark), [widgetKey('w-1')]);
    assert.equal(await events({ resource: 'configmaps', decision: 'drop', reason: 'own-write' }), ownBefore + 1);
  });

  it('holds the event of a write whose answer our worker has not recorded yet, and drops it once recorded', async () => {
    const mark = started.queue.keys.length;
    const target = { group: '', plural: 'configmaps', namespace: 'default', name: 'w-1-child' };
    // The worker's side of one write, step by step: marked in flight, sent, its answer recorded late.
    const run = recorder.forRun();
    await run.beforeWrite(target);
    const written = await theirs.patch(
      { ...CONFIGMAPS, namespace: 'default', name: 'w-1-child' },
      { type: 'merge', body: { data: { color: 'amber' } } },
    );
    const rv = written.metadata.resourceVersion;
    await waitFor('the watcher told the write is in flight', () => lookup.verdicts.get(rv)?.includes('in-flight') === true);
    await run.afterWrite(target, rv);
    await barrier();
    assert.deepEqual(enqueuedSince(mark), []);
    assert.equal(lookup.verdicts.get(rv)?.at(-1), 'own');
  });

  it('lets the write of a stale run (its queue lock lost) wake the controller', async () => {
    const mark = started.queue.keys.length;
    const lock = jobLockKey(controllerKeys(world.prefix, CONTROLLER).partitionOf('widgets-job').queue, 'widgets-job');
    await world.connection.set(lock, 'the-newer-run', 'PX', 30_000);
    const stale = new KubeApiClient({ kubeConfig: world.sim.kubeConfig(), fieldManager: fieldManagerOf(CONTROLLER) }).withWrites(
      recorder.forRun({ jobId: 'widgets-job', token: 'the-older-run' }),
    );
    await stale.apply(child('w-1-child', { color: 'stale' }), { force: true });
    await barrier();
    assert.deepEqual(enqueuedSince(mark), [widgetKey('w-1')]);
  });

  it('drops the events of a child whose owner it does not hold', async () => {
    const mark = started.queue.keys.length;
    await theirs.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'ghost-child',
        namespace: 'default',
        ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'ghost', uid: randomUUID(), controller: true }],
      },
    });
    await barrier();
    assert.deepEqual(enqueuedSince(mark), []);
    assert.ok((await events({ resource: 'configmaps', decision: 'drop', reason: 'owner-gone' })) >= 1);
  });
  it('still reconciles a deleting owner for an edit of its child, but not for its child going away while it is finalized', async () => {
    let mark = started.queue.keys.length;
    // w-1 carries the finalizer (first test): a delete only marks it, and that enqueues it.
    await theirs.delete({ ...WIDGETS, namespace: 'default', name: 'w-1' });
    await barrier();
    assert.deepEqual(enqueuedSince(mark), [widgetKey('w-1')]);

    mark = started.queue.keys.length;
    await theirs.patch({ ...CONFIGMAPS, namespace: 'default', name: 'w-1-child' }, { type: 'merge', body: { data: { color: 'late' } } });
    await barrier();
    assert.deepEqual(enqueuedSince(mark), [widgetKey('w-1')], 'an edit of the child still matters to a finalize');

    mark = started.queue.keys.length;
    const gone = await events({ resource: 'configmaps', type: 'DELETED', decision: 'drop', reason: 'owner-gone' });
    await theirs.delete({ ...CONFIGMAPS, namespace: 'default', name: 'w-1-child' });
    await barrier();
    assert.deepEqual(enqueuedSince(mark), []);
    assert.equal(await events({ resource: 'configmaps', type: 'DELETED', decision: 'drop', reason: 'owner-gone' }), gone + 1);
  });
});
