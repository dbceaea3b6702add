import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dataKeys, KubeApiClient } from '@conveyor/shared';
import {
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  WIDGETS,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };
const USES = 'example.com/palette';
const IS_PALETTE = 'example.com/is-palette';

describe('Watcher on the simulator: a mapped watch through an index of the controller’s own objects', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;
  let client: KubeApiClient;
  let round = 0;

  const palette = { ...CONFIGMAPS, namespace: 'default', name: 'team' };
  const widget = (name: string) => ({ ...WIDGETS, namespace: 'default', name });
  /** Edits the palette and returns the Widgets enqueued for it (a barrier edit of w-9's spec marks the end). */
  const enqueuedBy = async (edit: () => Promise<unknown>) => {
    const mark = started.queue.keys.length;
    await edit();
    round += 1;
    await client.patch(widget('w-9'), { type: 'merge', body: { spec: { size: 9_000 + round } } });
    await waitFor('the barrier enqueued', () => started.queue.keys.slice(mark).includes(widgetKey('w-9')));
    return started.queue.keys
      .slice(mark)
      .filter((k) => k !== widgetKey('w-9'))
      .sort();
  };
  const paletteEdit = (data: Record<string, string>) => () => client.patch(palette, { type: 'merge', body: { data } });
  const keys = (...names: string[]) => names.map((n) => widgetKey(n)).sort();

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(5, { labels: { [USES]: 'team' } });
    await world.createWidgets(5, { from: 5 });
    client = new KubeApiClient({ kubeConfig: world.sim.kubeConfig() });
    await client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'team', namespace: 'default', labels: { [IS_PALETTE]: 'true' } },
      data: { palette: 'red', notes: 'first' },
    });
    started = await world.startWatcher({
      controller: {
        predicates: ['generation'],
        watches: [{ resource: CONFIGMAPS, labels: `${IS_PALETTE}=true`, index: { label: USES }, changed: dataKeys(['palette']) }],
      },
    });
  });
  after(async () => {
    await world?.close();
  });

  it('enqueues the Widgets whose label names the palette for a relevant edit, and nothing for an irrelevant one', async () => {
    assert.deepEqual(await enqueuedBy(paletteEdit({ palette: 'blue' })), keys('w-0', 'w-1', 'w-2', 'w-3', 'w-4'));
    assert.deepEqual(await enqueuedBy(paletteEdit({ notes: 'second' })), []);
    const stored = await client.get(palette);
    assert.equal(stored.metadata.annotations, undefined, 'nothing is written on the palette');
  });

  it('follows label changes of the Widgets: one that stops naming the palette is no longer reconciled by its edits, one that starts is', async () => {
    // Label edits enqueue nothing (the predicate is `generation`); the delete enqueues w-2 itself.
    const changes = await enqueuedBy(async () => {
      await client.patch(widget('w-0'), { type: 'merge', body: { metadata: { labels: { [USES]: null } } } });
      await client.patch(widget('w-5'), { type: 'merge', body: { metadata: { labels: { [USES]: 'team' } } } });
      await client.patch(widget('w-1'), { type: 'merge', body: { metadata: { labels: { [USES]: 'other' } } } });
      await client.delete(widget('w-2'));
    });
    assert.deepEqual(changes, keys('w-2'));
    assert.deepEqual(await enqueuedBy(paletteEdit({ palette: 'green' })), keys('w-3', 'w-4', 'w-5'));
  });

  it('enqueues the dependents when the palette is deleted', async () => {
    assert.deepEqual(await enqueuedBy(() => client.delete(palette)), keys('w-3', 'w-4', 'w-5'));
  });
});
