import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ACCEPT_METADATA, ACCEPT_METADATA_LIST } from '@conveyor/shared';
import {
  metricValue,
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';

// Issue 5 acceptance, on the simulator over HTTP and a private Redis: metadata-only reads in pages of the
// configured size, and what 10,000 objects and their changes put in the queue.
const OBJECTS = 10_000;

describe('Watcher on the simulator: metadata-only paged sync of 10,000 Widgets', () => {
  let world: WatcherWorld;
  let generation: StartedWatcher;
  let labels: StartedWatcher;
  let afterCreate = 0;

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(OBJECTS);
    afterCreate = world.lastSeq();
  });
  after(async () => {
    await world?.close();
  });

  it('lists with the PartialObjectMetadataList Accept header in pages of the configured size, and watches metadata only', async () => {
    generation = await world.startWatcher({ controller: { predicates: ['generation'] }, settings: { pageSize: 300 } });
    const reads = world.readsSince(afterCreate);
    const lists = reads.filter((r) => r.verb === 'list');
    assert.equal(lists.length, Math.ceil(OBJECTS / 300), 'one request per page');
    for (const list of lists) {
      assert.equal(list.accept, ACCEPT_METADATA_LIST);
      assert.equal(list.limit, 300);
      assert.equal(list.code, 200);
    }
    assert.deepEqual(
      lists.map((l) => l.items),
      [...Array.from({ length: Math.floor(OBJECTS / 300) }, () => 300), OBJECTS % 300],
      'every page but the last is full',
    );
    assert.deepEqual(
      lists.map((l) => l.continued),
      lists.map((_, i) => i > 0),
      'pages after the first carry the continue token',
    );
    await waitFor('the watch after the list', () => world.readsSince(afterCreate).some((r) => r.verb === 'watch'));
    const watches = world.readsSince(afterCreate).filter((r) => r.verb === 'watch');
    for (const watch of watches) {
      assert.equal(watch.accept, ACCEPT_METADATA);
      assert.equal(watch.allowWatchBookmarks, true);
      assert.ok(watch.resourceVersion !== undefined && Number(watch.resourceVersion) > 0, 'the watch resumes from the list');
    }
  });

  it('a streaming list (sendInitialEvents) also asks for PartialObjectMetadata', async () => {
    const from = world.lastSeq();
    const streaming = await world.startWatcher({ controller: { predicates: ['generation'] }, settings: { streamingList: 'always' } });
    assert.equal(streaming.watcher.tracked, OBJECTS);
    const reads = world.readsSince(from);
    assert.deepEqual(
      reads.filter((r) => r.verb === 'list'),
      [],
    );
    const initial = reads.filter((r) => r.verb === 'watch' && r.sendInitialEvents);
    assert.equal(initial.length, 1);
    assert.equal(initial[0]?.accept, ACCEPT_METADATA);
    await streaming.watcher.stop(1_000);
  });

  it('the first sync enqueues each key exactly once', async () => {
    labels = await world.startWatcher({ controller: { predicates: ['generation', 'labels'] } });
    for (const { queue, registry } of [generation, labels]) {
      const counts = queue.countsSince(0);
      assert.equal(counts.size, OBJECTS);
      for (let i = 0; i < OBJECTS; i++) assert.equal(counts.get(widgetKey(`w-${i}`)), 1, `w-${i} enqueued once`);
      assert.equal(await metricValue(registry, 'conveyor_watch_enqueued_total', { reason: 'event' }), OBJECTS);
      assert.equal(await queue.waiting(), OBJECTS, 'every key waits in the queue');
    }
  });

  it('status-only changes enqueue nothing; a spec change enqueues its key once; a label change only with the labels predicate', async () => {
    const before = { generation: generation.queue.keys.length, labels: labels.queue.keys.length };
    const statusOnly = range(0, 300);
    const spec = range(300, 400);
    const labelled = range(400, 500);
    await inBatches(statusOnly, (i) => world.patchWidget(`w-${i}`, { status: { audited: `pass-${i}` } }, true));
    await inBatches(spec, (i) => world.patchWidget(`w-${i}`, { spec: { size: i + 1_000_000 } }));
    await inBatches(labelled, (i) => world.patchWidget(`w-${i}`, { metadata: { labels: { tier: 'gold' } } }));
    const changes = statusOnly.length + spec.length + labelled.length;
    // Both watchers have seen every change once their MODIFIED counters reach the count (nothing was modified before).
    for (const { registry } of [generation, labels]) {
      await waitFor(
        'every change seen',
        async () => (await metricValue(registry, 'conveyor_watch_events_total', { type: 'MODIFIED' })) >= changes,
      );
    }
    const expected = {
      generation: spec.map((i) => widgetKey(`w-${i}`)),
      labels: [...spec, ...labelled].map((i) => widgetKey(`w-${i}`)),
    };
    await waitFor('the spec and label changes enqueued', () => {
      return (
        generation.queue.keys.length - before.generation >= expected.generation.length &&
        labels.queue.keys.length - before.labels >= expected.labels.length
      );
    });
    // A moment for anything unexpected to arrive too.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(sorted(generation.queue.keys.slice(before.generation)), sorted(expected.generation));
    assert.deepEqual(sorted(labels.queue.keys.slice(before.labels)), sorted(expected.labels));
    assert.equal(
      await metricValue(generation.registry, 'conveyor_watch_events_total', { type: 'MODIFIED', decision: 'drop' }),
      statusOnly.length + labelled.length,
      'every dropped change is counted with its reason',
    );
    assert.equal(await generation.queue.waiting(), OBJECTS, 'the new requests merged into the waiting ones');
  });

  it('a change of the reconcile.conveyor.dev/requestedAt annotation enqueues whatever the predicates', async () => {
    const mark = generation.queue.keys.length;
    const modified = () => metricValue(generation.registry, 'conveyor_watch_events_total', { type: 'MODIFIED' });
    const before = await modified();
    await world.patchWidget('w-600', { metadata: { annotations: { 'reconcile.conveyor.dev/requestedAt': new Date().toISOString() } } });
    await world.patchWidget('w-601', { metadata: { annotations: { 'example.com/note': 'not a request' } } });
    // w-601's edit comes after w-600's on the same watch: once it is counted, both were decided.
    await waitFor('both annotation edits seen', async () => (await modified()) >= before + 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(generation.queue.keys.slice(mark), [widgetKey('w-600')]);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

async function inBatches(items: readonly number[], fn: (i: number) => Promise<unknown>, size = 25): Promise<void> {
  for (let start = 0; start < items.length; start += size) await Promise.all(items.slice(start, start + size).map(fn));
}
