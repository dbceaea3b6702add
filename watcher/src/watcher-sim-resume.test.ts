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

// Issue 5 acceptance: the server closes watches every few seconds for a minute while objects change; the
// watcher resumes from its resourceVersion (no relist) and misses nothing; a forced 410 relists once.
// This file uses the default streaming list (sendInitialEvents) so both list paths run against the simulator;
// the sync test covers paged lists.
const OBJECTS = 2_000;
/** The issue asks for a minute; this is it. */
const CHURN_MS = 60_000;
const CLOSE_EVERY_MS = 3_000;

/** A relist is a paged list's first page or a streaming list (a watch with sendInitialEvents). */
function relistsIn(world: WatcherWorld, fromSeq: number): number {
  return world.readsSince(fromSeq).filter((r) => (r.verb === 'list' && !r.continued) || (r.verb === 'watch' && r.sendInitialEvents)).length;
}

describe('Watcher on the simulator: watches closed by the server, and a forced 410', () => {
  let world: WatcherWorld;
  let started: StartedWatcher;
  let syncedAt = 0;
  let afterSyncSeq = 0;
  /** Widgets changed so far, each once: name → position in the recorder when its change was sent. */
  const changed = new Map<string, number>();
  let nextToChange = 0;

  /** Changes the spec of the next untouched Widget and remembers where the recorder stood before it. */
  async function changeNext(): Promise<void> {
    const name = `w-${nextToChange++}`;
    changed.set(name, started.queue.keys.length);
    await world.patchWidget(name, { spec: { size: 1_000_000 } });
  }

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(OBJECTS);
    const seq = world.lastSeq();
    started = await world.startWatcher({ settings: { streamingList: 'auto' } });
    await waitFor('the first sync in the queue', () => started.queue.keys.length >= OBJECTS);
    syncedAt = started.queue.keys.length;
    assert.equal(relistsIn(world, seq), 1, 'one initial list');
    afterSyncSeq = world.lastSeq();
  });
  after(async () => {
    await world?.close();
  });

  it(`misses no change and never relists while the server closes every watch every ${CLOSE_EVERY_MS / 1000} s for ${CHURN_MS / 1000} s`, async () => {
    let closes = 0;
    const closer = setInterval(() => {
      closes += world.sim.faults.closeWatches() > 0 ? 1 : 0;
    }, CLOSE_EVERY_MS);
    try {
      const end = Date.now() + CHURN_MS;
      while (Date.now() < end) {
        await changeNext();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      clearInterval(closer);
    }
    assert.ok(closes >= 5, `the server closed watches ${closes} times`);
    await waitFor('every changed Widget enqueued after its change', () => missed(started, changed).length === 0, 60_000);
    assert.deepEqual(missed(started, changed), []);
    assert.equal(relistsIn(world, afterSyncSeq), 0, 'no list while watches were closed: each watch resumed from its resourceVersion');
    const watchesSince = () => world.readsSince(afterSyncSeq).filter((r) => r.verb === 'watch');
    // The last reconnect may still be in its backoff (a watch closed before its first line counts as a failure).
    await waitFor(`a new watch after each of the ${closes} closes`, () => watchesSince().length >= closes);
    const watches = watchesSince();
    for (const w of watches) assert.ok(Number(w.resourceVersion) > 0, 'every watch resumes from a resourceVersion');
    assert.equal(await metricValue(started.registry, 'conveyor_watch_relists_total'), 1, 'only the initial list');
    assert.ok((await metricValue(started.registry, 'conveyor_watch_restarts_total')) >= closes - 1);
    assertOnlyChangedSince(started, syncedAt, changed);
  });

  it('relists once after a forced 410, enqueueing what changed in the gap and nothing else', async () => {
    const seq = world.lastSeq();
    const gap = [];
    world.sim.faults.expireNextWatch();
    world.sim.faults.closeWatches();
    for (let i = 0; i < 50; i++) gap.push(changeNext());
    await Promise.all(gap);
    await waitFor(
      'the relist after 410',
      async () => (await metricValue(started.registry, 'conveyor_watch_relists_total', { reason: 'gone' })) === 1,
    );
    await waitFor('every changed Widget enqueued after its change', () => missed(started, changed).length === 0, 60_000);
    // More changes after the relist still arrive through the watch, and no second relist happens.
    for (let i = 0; i < 20; i++) await changeNext();
    await waitFor('changes after the relist enqueued', () => missed(started, changed).length === 0, 60_000);
    assert.equal(relistsIn(world, seq), 1, 'exactly one relist');
    assert.equal(await metricValue(started.registry, 'conveyor_watch_relists_total'), 2, 'the initial list and the one after 410');
    assertOnlyChangedSince(started, syncedAt, changed);
  });
});

/** Changed Widgets with no request at or after the moment their change was sent. */
function missed(started: StartedWatcher, changed: Map<string, number>): string[] {
  const lastSeen = new Map<string, number>();
  started.queue.keys.forEach((key, index) => {
    lastSeen.set(key, index);
  });
  return [...changed].filter(([name, sentAt]) => (lastSeen.get(widgetKey(name)) ?? -1) < sentAt).map(([name]) => name);
}

/** Since the first sync, only changed Widgets were enqueued (a relist or reconnect enqueues nothing that did not change). */
function assertOnlyChangedSince(started: StartedWatcher, from: number, changed: Map<string, number>): void {
  const allowed = new Set([...changed.keys()].map((name) => widgetKey(name)));
  const extra = [...new Set(started.queue.keys.slice(from))].filter((key) => !allowed.has(key));
  assert.deepEqual(extra, [], 'nothing enqueued beyond the changed Widgets');
}
