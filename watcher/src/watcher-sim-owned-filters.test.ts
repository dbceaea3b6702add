import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeApiClient, type StoredObject } from '@conveyor/shared';
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
const MANAGED = 'app.kubernetes.io/managed-by';
const REVISION = 'example.com/revision';

describe('Watcher on the simulator: owned children narrowed by selector, namespace and predicates', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;
  let client: KubeApiClient;
  let owner: StoredObject;

  // Owner references stay within a namespace (garbage collection deletes a child whose owner is not in its own):
  // the child in `other` has none.
  const child = (name: string, labels: Record<string, string>, namespace = 'default') => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels,
      ...(namespace === 'default'
        ? {
            ownerReferences: [
              { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w-1', uid: owner.metadata.uid ?? '', controller: true },
            ],
          }
        : {}),
    },
    data: { a: '1' },
  });
  const cm = (name: string, namespace = 'default') => ({ ...CONFIGMAPS, namespace, name });
  const events = (labels: Record<string, string>) =>
    metricValue(started.registry, 'conveyor_watch_events_total', { resource: 'configmaps', ...labels });
  /** A spec edit of w-2 by someone else: once it is in the queue, every request decided before it is too. */
  const barrier = async (round: number) => {
    const mark = started.queue.keys.length;
    await client.patch({ ...WIDGETS, namespace: 'default', name: 'w-2' }, { type: 'merge', body: { spec: { size: 1_000 + round } } });
    await waitFor('the barrier enqueued', () => started.queue.keys.slice(mark).includes(widgetKey('w-2')));
  };
  const ownerEnqueuedSince = (mark: number) => started.queue.keys.slice(mark).filter((k) => k === widgetKey('w-1')).length;

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(3);
    client = new KubeApiClient({ kubeConfig: world.sim.kubeConfig() });
    await client.create(
      { group: '', version: 'v1', plural: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } },
    );
    owner = await client.get({ ...WIDGETS, namespace: 'default', name: 'w-1' });
    await client.create(CONFIGMAPS, child('managed', { [MANAGED]: 'widgets' }));
    await client.create(CONFIGMAPS, child('unlabelled', {}));
    await client.create(CONFIGMAPS, child('elsewhere', { [MANAGED]: 'widgets' }, 'other'));
    started = await world.startWatcher({
      controller: {
        predicates: ['generation'],
        owns: [
          {
            ...CONFIGMAPS,
            labels: `${MANAGED}=widgets`,
            namespace: 'default',
            predicates: [{ name: 'revision', changed: (meta) => meta.annotations?.[REVISION] }],
          },
        ],
      },
    });
  });
  after(async () => {
    await world?.close();
  });

  it('lists and watches only the selected children, with the selector and namespace on the server', async () => {
    assert.equal(await metricValue(started.registry, 'conveyor_watch_tracked_objects', { resource: 'configmaps' }), 1);
    const reads = world.readsSince(0).filter((r) => r.resource === 'configmaps');
    assert.ok(reads.length > 0);
    assert.ok(
      reads.every((r) => r.labelSelector === `${MANAGED}=widgets` && r.namespace === 'default'),
      JSON.stringify(reads.map((r) => [r.verb, r.labelSelector, r.namespace])),
    );
  });

  it('enqueues the owner when a selected child’s projection moves, and not for a change the predicate ignores', async () => {
    let mark = started.queue.keys.length;
    await client.patch(cm('managed'), { type: 'merge', body: { data: { a: '2' } } });
    await barrier(1);
    assert.equal(ownerEnqueuedSince(mark), 0, 'a data edit does not move the revision annotation');
    assert.equal(await events({ type: 'MODIFIED', decision: 'drop', reason: 'filtered' }), 1);

    mark = started.queue.keys.length;
    await client.patch(cm('managed'), { type: 'merge', body: { metadata: { annotations: { [REVISION]: '2' } } } });
    await barrier(2);
    assert.equal(ownerEnqueuedSince(mark), 1);
    assert.equal(await events({ type: 'MODIFIED', decision: 'pass', reason: 'revision' }), 1);
  });

  it('sees nothing of an unselected child, and enqueues the owner when a child leaves the selection', async () => {
    let mark = started.queue.keys.length;
    await client.patch(cm('unlabelled'), { type: 'merge', body: { metadata: { annotations: { [REVISION]: '9' } } } });
    await client.patch(cm('elsewhere', 'other'), { type: 'merge', body: { metadata: { annotations: { [REVISION]: '9' } } } });
    await barrier(3);
    assert.equal(ownerEnqueuedSince(mark), 0);

    mark = started.queue.keys.length;
    await client.patch(cm('managed'), { type: 'merge', body: { metadata: { labels: { [MANAGED]: null } } } });
    await barrier(4);
    assert.equal(ownerEnqueuedSince(mark), 1, 'the child left the watch (DELETED): its owner is reconciled');
    assert.equal(await metricValue(started.registry, 'conveyor_watch_tracked_objects', { resource: 'configmaps' }), 0);
  });
});
