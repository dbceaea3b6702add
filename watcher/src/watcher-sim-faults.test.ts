import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  metricValue,
  type StartedWatcher,
  startWatcherWorld,
  type WatcherWorld,
  waitFor,
  widgetKey,
} from '@conveyor/test/support/watcher-world';

// Issue 5: the watcher never stops on its own and never goes quiet (the "zombie watcher" of Kopf #1276):
// failed pages restart the list, 429s and 500s on the watch are retried with backoff from the same
// resourceVersion, and a watch on which nothing arrives for twice the bookmark interval is reopened.
const OBJECTS = 1_000;

describe('Watcher on the simulator: errors, silence and a lost Redis', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;
  /** List requests the simulator fails: the 3rd, 5th and 8th (pages in the middle of the first list). */
  const failing = new Set([3, 5, 8]);
  let listDecisions = 0;

  before(async () => {
    world = await startWatcherWorld({
      bookmarkIntervalMs: 300,
      // Only the list rule below asks; fail exactly the chosen requests.
      random: () => (failing.has(++listDecisions) ? 0 : 0.99),
    });
    await world.createWidgets(OBJECTS);
  });
  after(async () => {
    await world?.close();
  });

  it('a page that fails mid-list restarts the list, and the sync still enqueues each key exactly once', async () => {
    const seq = world.lastSeq();
    world.sim.faults.serverErrors({ verbs: ['list'], share: 0.5, count: failing.size });
    started = await world.startWatcher({ settings: { pageSize: 100, maxBackoffMs: 1_000, bookmarkIntervalMs: 1_000, epochCheckMs: 250 } });
    const lists = world.readsSince(seq).filter((r) => r.verb === 'list');
    assert.equal(lists.filter((r) => r.code === 500).length, failing.size, 'the injected failures happened');
    assert.ok(
      lists.some((r) => r.code === 500 && r.continued),
      'a failure hit a page after the first',
    );
    const counts = started.queue.countsSince(0);
    assert.equal(counts.size, OBJECTS);
    assert.deepEqual(
      [...counts].filter(([, n]) => n !== 1),
      [],
      'each key once despite the restarts',
    );
  });

  it('keeps watching through 429s and 500s on the watch, from the same resourceVersion, without relisting', async () => {
    const seq = world.lastSeq();
    const relists = await metricValue(started.registry, 'conveyor_watch_relists_total');
    world.sim.faults.throttle({ verbs: ['watch'], count: 2, retryAfterSeconds: 1 });
    world.sim.faults.serverErrors({ verbs: ['watch'], count: 3 });
    world.sim.faults.closeWatches();
    const mark = started.queue.keys.length;
    const changed = Array.from({ length: 30 }, (_, i) => `w-${i * 7}`);
    for (const name of changed) await world.patchWidget(name, { spec: { size: -1 } });
    await waitFor('every change enqueued after the errors', () => {
      const seen = new Set(started.queue.keys.slice(mark));
      return changed.every((name) => seen.has(widgetKey(name)));
    });
    const watches = world.readsSince(seq).filter((r) => r.verb === 'watch');
    assert.deepEqual(
      watches.slice(0, 5).map((w) => w.code),
      [429, 429, 500, 500, 500],
    );
    assert.equal(await metricValue(started.registry, 'conveyor_watch_relists_total'), relists, 'no relist');
    assert.ok((await metricValue(started.registry, 'conveyor_watch_restarts_total', { reason: 'throttled' })) >= 2);
    assert.ok((await metricValue(started.registry, 'conveyor_watch_restarts_total', { reason: 'error' })) >= 3);
    for (const w of watches) assert.ok(Number(w.resourceVersion) > 0, 'every retry resumes from a resourceVersion');
  });

  it('reopens a watch on which nothing arrives for twice the bookmark interval, and loses nothing', async () => {
    const relists = await metricValue(started.registry, 'conveyor_watch_relists_total');
    const silentBefore = await metricValue(started.registry, 'conveyor_watch_restarts_total', { reason: 'silent' });
    const mark = started.queue.keys.length;
    // Paused, the simulator holds every line of open watches (bookmarks too) and every new request.
    world.sim.faults.pause();
    try {
      await world.createWidgets(20, { from: OBJECTS });
      await waitFor(
        'the silent watch abandoned',
        async () => (await metricValue(started.registry, 'conveyor_watch_restarts_total', { reason: 'silent' })) > silentBefore,
      );
    } finally {
      world.sim.faults.resume();
    }
    await waitFor('the Widgets created during the silence enqueued', () => {
      const seen = new Set(started.queue.keys.slice(mark));
      return Array.from({ length: 20 }, (_, i) => widgetKey(`w-${OBJECTS + i}`)).every((key) => seen.has(key));
    });
    assert.equal(await metricValue(started.registry, 'conveyor_watch_relists_total'), relists, 'resumed by resourceVersion, no relist');
  });

  it('Redis restarted without persistence (queue epoch gone): relists and enqueues every object again', async () => {
    const total = OBJECTS + 20;
    const mark = started.queue.keys.length;
    const before = await metricValue(started.registry, 'conveyor_watch_relists_total', { reason: 'requested' });
    await world.redis.restart();
    await waitFor('every Widget enqueued again', () => started.queue.countsSince(mark).size === total, 90_000);
    assert.equal(await metricValue(started.registry, 'conveyor_watch_relists_total', { reason: 'requested' }), before + 1);
    assert.equal(await started.queue.waiting(), total, 'the emptied queue holds every Widget again');
  });

  it('Redis restarted right after the first list, before any periodic epoch check: still noticed, every object enqueued again', async () => {
    // The epoch is noted before the first list enqueues anything; a check that only armed it on its
    // first run would take this restart for the starting state and never refill the queue.
    const fresh = await world.startWatcher({ queue: world.newQueue('widgets-fresh'), settings: { epochCheckMs: 1_000 } });
    const total = OBJECTS + 20;
    assert.equal(fresh.queue.countsSince(0).size, total, 'the first list enqueued everything');
    const mark = fresh.queue.keys.length;
    await world.redis.restart();
    await waitFor('every Widget enqueued again', () => fresh.queue.countsSince(mark).size === total, 90_000);
    assert.equal(await metricValue(fresh.registry, 'conveyor_watch_relists_total', { reason: 'requested' }), 1);
  });
});
