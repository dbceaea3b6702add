import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dataKeys, type KubeObject, type TargetRef } from '@conveyor/shared';
import {
  metricValue,
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';

// Issue 5 acceptance: a child Deployment's status change enqueues its owner; a ConfigMap with 5,000
// dependents enqueues nothing for an irrelevant edit and the 5,000 keys, merged, for the relevant one.
const DEPENDENTS = 5_000;
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps';
const PALETTE_LABEL = 'example.com/palette';
const DEPENDENTS_ANNOTATION = 'example.com/dependents';
const MERGE_PATCH = 'application/merge-patch+json';

/** The Widgets a palette names in its dependents annotation (as the Widget example does). */
function dependentsOf(configMap: KubeObject): TargetRef[] {
  const listed = configMap.metadata?.annotations?.[DEPENDENTS_ANNOTATION] ?? '';
  return listed
    .split(',')
    .filter((name) => name !== '')
    .map((name) => ({ name }));
}

function deployment(name: string, owner?: { name: string; uid: string }): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      ...(owner === undefined
        ? {}
        : { ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Widget', name: owner.name, uid: owner.uid, controller: true }] }),
    },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } },
    },
  };
}

describe('Watcher on the simulator: owner and mapped triggers', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(DEPENDENTS);
    const owner = (await world.request('GET', '/apis/example.com/v1/namespaces/default/widgets/w-7')) as { metadata: { uid: string } };
    await world.request('POST', DEPLOYMENTS, deployment('owned', { name: 'w-7', uid: owner.metadata.uid }));
    await world.request('POST', DEPLOYMENTS, deployment('orphan'));
    await world.request('POST', CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'palette',
        labels: { [PALETTE_LABEL]: 'true' },
        annotations: { [DEPENDENTS_ANNOTATION]: Array.from({ length: DEPENDENTS }, (_, i) => `w-${i}`).join(',') },
      },
      data: { palette: 'red', notes: 'first' },
    });
    started = await world.startWatcher({
      controller: {
        predicates: ['generation'],
        owns: [{ group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' }],
        watches: [
          {
            resource: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
            labels: `${PALETTE_LABEL}=true`,
            map: dependentsOf,
            changed: dataKeys(['palette']),
          },
        ],
      },
    });
    await waitFor('the first sync in the queue', async () => (await started.queue.waiting()) === DEPENDENTS);
  });
  after(async () => {
    await world?.close();
  });

  /** Waits until the stream of `resource` has seen `count` more MODIFIED events than `from`. */
  async function seen(resource: string, from: number, count = 1): Promise<void> {
    await waitFor(`${count} change(s) of ${resource} seen`, async () => {
      return (await metricValue(started.registry, 'conveyor_watch_events_total', { resource, type: 'MODIFIED' })) >= from + count;
    });
  }
  const modified = (resource: string) => metricValue(started.registry, 'conveyor_watch_events_total', { resource, type: 'MODIFIED' });

  it("a controlled Deployment's status change enqueues its owner Widget; an unowned Deployment's enqueues nothing", async () => {
    const mark = started.queue.keys.length;
    const before = await modified('deployments.apps');
    await world.request('PATCH', `${DEPLOYMENTS}/orphan/status`, { status: { readyReplicas: 1 } }, MERGE_PATCH);
    await world.request('PATCH', `${DEPLOYMENTS}/owned/status`, { status: { readyReplicas: 1 } }, MERGE_PATCH);
    await seen('deployments.apps', before, 2);
    await waitFor('the owner enqueued', () => started.queue.keys.length > mark);
    assert.deepEqual(started.queue.keys.slice(mark), [widgetKey('w-7')]);
    assert.equal(
      await metricValue(started.registry, 'conveyor_watch_events_total', {
        resource: 'deployments.apps',
        type: 'MODIFIED',
        decision: 'drop',
        reason: 'unowned',
      }),
      1,
    );
  });

  it('an edit of an irrelevant key of a ConfigMap with 5,000 dependents enqueues nothing', async () => {
    const mark = started.queue.keys.length;
    const before = await modified('configmaps');
    await world.request('PATCH', `${CONFIGMAPS}/palette`, { data: { notes: 'second' } }, MERGE_PATCH);
    await seen('configmaps', before);
    // The decision is made when the event is counted; give a batch that was sent anyway a moment to show.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(started.queue.keys.slice(mark), []);
  });

  it('an edit of the relevant key enqueues each of the 5,000 dependents once, merged into their waiting requests', async () => {
    const mark = started.queue.keys.length;
    const before = await modified('configmaps');
    await world.request('PATCH', `${CONFIGMAPS}/palette`, { data: { palette: 'blue' } }, MERGE_PATCH);
    await seen('configmaps', before);
    await waitFor('the dependents enqueued', () => started.queue.keys.length - mark >= DEPENDENTS);
    const counts = started.queue.countsSince(mark);
    assert.equal(counts.size, DEPENDENTS);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'each dependent once',
    );
    assert.equal(await started.queue.waiting(), DEPENDENTS, 'merged: still one waiting request per Widget');
  });
});
