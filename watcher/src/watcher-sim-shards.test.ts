import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formatKey } from '@conveyor/shared';
import {
  metricValue,
  type RecordingQueue,
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';
import { type Shard, shardOf } from './sharding.ts';

// Issue 5 acceptance: two shards together enqueue every key exactly once; going from 2 to 3 shards leaves
// no key uncovered (a replica that gains keys relists and enqueues them; duplicates merge).
const OBJECTS = 3_000;
const names = Array.from({ length: OBJECTS }, (_, i) => `w-${i}`);

function owned(shard: Shard): Set<string> {
  return new Set(names.filter((name) => shardOf('default', name, shard.count) === shard.index).map((name) => widgetKey(name)));
}

function held(started: StartedWatcher): Set<string> {
  return new Set([...started.watcher.keys()].map((key) => formatKey(key)));
}

describe('Watcher on the simulator: shards', () => {
  let world: WatcherWorld;
  let queue: RecordingQueue;
  const replicas: StartedWatcher[] = [];

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(OBJECTS);
    queue = world.newQueue();
  });
  after(async () => {
    await world?.close();
  });

  it('two shards together enqueue every key exactly once', async () => {
    replicas.push(await world.startWatcher({ queue, shard: { index: 0, count: 2 } }));
    replicas.push(await world.startWatcher({ queue, shard: { index: 1, count: 2 } }));
    await waitFor('both first syncs in the queue', () => queue.keys.length >= OBJECTS);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const counts = queue.countsSince(0);
    assert.equal(counts.size, OBJECTS);
    assert.deepEqual(
      names.filter((name) => counts.get(widgetKey(name)) !== 1),
      [],
      'every key once across both replicas',
    );
    for (const [index, replica] of replicas.entries()) {
      const mine = owned({ index, count: 2 });
      assert.ok(mine.size > OBJECTS / 4, `shard ${index}/2 holds a fair share (${mine.size})`);
      assert.deepEqual(held(replica), mine, `replica ${index} tracks exactly its shard`);
    }
  });

  it('going from 2 to 3 shards leaves no key uncovered, and later changes reach the queue once', async () => {
    const mark = queue.keys.length;
    const gained = new Set<string>();
    for (const [index] of replicas.entries()) {
      for (const key of owned({ index, count: 3 })) if (!owned({ index, count: 2 }).has(key)) gained.add(key);
    }
    const [first, second] = replicas as [StartedWatcher, StartedWatcher];
    first.watcher.reshard({ index: 0, count: 3 });
    second.watcher.reshard({ index: 1, count: 3 });
    const third = await world.startWatcher({ queue, shard: { index: 2, count: 3 } });
    replicas.push(third);
    for (const replica of [first, second]) {
      await waitFor('the relist after resharding', async () => {
        const relisted = await metricValue(replica.registry, 'conveyor_watch_relists_total', { reason: 'requested' });
        return relisted >= 1 && replica.watcher.ready;
      });
    }
    await waitFor('every key owned by its new replica', () => replicas.every((r, index) => sameSet(held(r), owned({ index, count: 3 }))));
    const union = new Set(replicas.flatMap((r) => [...held(r)]));
    assert.equal(union.size, OBJECTS, 'no key uncovered');
    assert.equal(
      replicas.reduce((sum, r) => sum + held(r).size, 0),
      OBJECTS,
      'no key held twice',
    );
    const since = new Set(queue.keys.slice(mark));
    const missing = [...gained, ...owned({ index: 2, count: 3 })].filter((key) => !since.has(key));
    assert.deepEqual(missing, [], 'every key a replica gained was enqueued by it');

    // Changes after the reshard: each reaches the queue once, from its one owner.
    const afterReshard = queue.keys.length;
    const changed = names.filter((_, i) => i % 10 === 0);
    for (let start = 0; start < changed.length; start += 25) {
      await Promise.all(changed.slice(start, start + 25).map((name) => world.patchWidget(name, { spec: { size: -1 } })));
    }
    await waitFor('every change enqueued', () => {
      const seen = new Set(queue.keys.slice(afterReshard));
      return changed.every((name) => seen.has(widgetKey(name)));
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const counts = queue.countsSince(afterReshard);
    assert.equal(counts.size, changed.length);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'each change enqueued by exactly one replica',
    );
  });
});

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
