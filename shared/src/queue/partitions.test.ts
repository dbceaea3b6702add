// Integration tests on a real Redis for a queue split into partitions (queue.partitions): the per-key promises in each, the queue-wide answers over all, and the rule for changing the count.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueLeftovers } from '@conveyor/test/race/recorder';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { gate, queueHarness, queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { ConfigError, TerminalError, ThrottledError } from '../errors.ts';
import { keyToJobId } from '../object-key.ts';
import { done } from '../outcome.ts';
import { concurrencyShares } from './queue-worker.ts';
import { type QueueSettings, ReconcileQueue } from './reconcile-queue.ts';
import { controllerKeys } from './redis-keys.ts';

const db = privateRedis();

/** Names of keys, `count` per partition of a `partitions`-way split (so a test is sure to touch every partition). */
function keysPerPartition(settings: QueueSettings, count: number): string[][] {
  const keys = controllerKeys(settings.redis.prefix, settings.controller, settings.queue.partitions);
  const byPartition: string[][] = keys.partitions.map(() => []);
  for (let i = 0; byPartition.some((names) => names.length < count); i++) {
    const name = `k${i}`;
    const names = byPartition[keys.partitionOf(keyToJobId(widgetKey(name))).index];
    if (names !== undefined && names.length < count) names.push(name);
  }
  return byPartition;
}

/** Two slots per partition: one key held running leaves its partition a slot for the others. */
const harness: typeof queueHarness = (settings, processor) => queueHarness(settings, processor, 6);

describe('a queue in 3 partitions', () => {
  it('merges, keeps a request made during a run, never runs a key twice at once, and sums depth and parked requests over the partitions', async () => {
    const settings = queueSettings(db.server.url, { partitions: 3 });
    const [first = [], second = [], third = []] = keysPerPartition(settings, 2);
    const held = first[0] ?? '';
    const failing = new Set([second[0], third[0]]);
    const hold = gate();
    let running = 0;
    let overlap = false;
    const h = harness(settings, async (request, runs) => {
      const name = request.key.name;
      running += name === held ? 1 : 0;
      if (running > 1) overlap = true;
      try {
        if (name === held && runs.filter((r) => r.key.name === held).length === 1) await hold.promise;
        if (failing.has(name)) throw new TerminalError(`no good: ${name}`);
        return done;
      } finally {
        running -= name === held ? 1 : 0;
      }
    });
    try {
      const all = [...first, ...second, ...third];
      for (let i = 0; i < 3; i++) await h.queue.enqueueBatch(all.map((name) => ({ key: widgetKey(name), reason: 'event' as const })));
      const depth = await h.queue.getDepth();
      assert.equal(depth.waiting + depth.prioritized, all.length, 'one job per key, whatever its partition');
      assert.equal(depth.lanes.event, all.length);

      h.start();
      await waitFor('the held key running', () => h.names().includes(held));
      await h.queue.enqueue({ key: widgetKey(held), reason: 'event' });
      await h.queue.enqueue({ key: widgetKey(held), reason: 'manual' });
      await waitFor('the other partitions drained while one key is held', async () => {
        const d = await h.queue.getDepth();
        return d.parked === 2 && d.waiting + d.prioritized === 0;
      });
      assert.equal((await h.queue.getDepth()).active, 1);
      hold.open();
      await waitFor('the held key ran again', () => h.names().filter((n) => n === held).length === 2);
      assert.equal(h.runs.filter((r) => r.key.name === held).at(-1)?.reason, 'manual', 'the latest request wins');
      assert.equal(overlap, false, 'never two reconciles of one key at once');
      for (const name of all)
        if (name !== held) assert.equal(h.names().filter((n) => n === name).length, 1, `${name}: three requests, one run`);

      // Parked requests of two partitions, seen and handled as one list.
      assert.deepEqual((await h.queue.listParked()).map((p) => p.key.name).sort(), [...failing].sort());
      assert.deepEqual(await h.queue.countParked(), { terminal: 2, exhausted: 0 });
      assert.equal(await h.queue.discardParked(widgetKey(second[0] ?? '')), 1);
      failing.clear();
      assert.equal(await h.queue.retryParked(), 1);
      await waitFor('the retried key ran again', () => h.names().filter((n) => n === third[0]).length === 2);
      await waitFor(
        'nothing left in any partition',
        async () => (await queueLeftovers(db.redis, 'conveyor', settings.controller, 3)).length === 0,
      );
      assert.deepEqual(await h.queue.listParked(), []);
    } finally {
      await h.close();
    }
  });

  it('a throttled reconcile pauses every partition, not only its own', async () => {
    const settings = queueSettings(db.server.url, { partitions: 3 });
    const [first = [], second = [], third = []] = keysPerPartition(settings, 1);
    let throttledAt = 0;
    const startedAt = new Map<string, number>();
    const h = harness(settings, async (request, runs) => {
      if (request.key.name === first[0] && runs.length === 1) {
        throttledAt = Date.now();
        throw new ThrottledError('429 from the API server', 1_000);
      }
      startedAt.set(request.key.name, Date.now());
      return done;
    });
    try {
      h.start();
      await h.queue.enqueue({ key: widgetKey(first[0] ?? ''), reason: 'event' });
      await waitFor('the throttled run', () => throttledAt > 0);
      await h.queue.enqueueBatch([...second, ...third].map((name) => ({ key: widgetKey(name), reason: 'event' as const })));
      await waitFor('all three reconciled', () => startedAt.size === 3, 10_000);
      for (const name of [first[0], second[0], third[0]]) {
        const waited = (startedAt.get(name ?? '') ?? 0) - throttledAt;
        // BullMQ's pause is the limiter key's PX in Redis; allow a little for timers.
        assert.ok(waited >= 950, `${name} started ${waited} ms after the throttle, inside the 1,000 ms pause`);
      }
    } finally {
      await h.close();
    }
  });

  it('epoch: losing the data of any partition is noticed', async () => {
    const settings = queueSettings(db.server.url, { partitions: 3 });
    const queue = new ReconcileQueue(settings);
    try {
      assert.equal(await queue.checkEpoch(), false);
      const partition = controllerKeys('conveyor', settings.controller, 3).partitions[2];
      await db.redis.del(partition?.epoch ?? '');
      assert.equal(await queue.checkEpoch(), true);
      assert.equal(await queue.checkEpoch(), false, 'reported once');
    } finally {
      await queue.close();
    }
  });
});

describe('changing queue.partitions', () => {
  it('refuses a new count while the queue holds requests, takes it once the queue is empty, and tells a process still on the old count', async () => {
    const one = queueSettings(db.server.url);
    const three: QueueSettings = { ...one, queue: { ...one.queue, partitions: 3 } };
    const old = new ReconcileQueue(one);
    const next = new ReconcileQueue(three);
    try {
      await old.enqueue({ key: widgetKey('a'), reason: 'event' });
      await old.checkEpoch();
      const refused = (error: unknown) =>
        error instanceof ConfigError &&
        error.problems[0]?.path === 'queue.partitions' &&
        /split into 1 partition and still holds 1 request/.test(error.message);
      await assert.rejects(next.enqueue({ key: widgetKey('b'), reason: 'event' }), refused);
      await assert.rejects(next.checkLayout(), refused);
      assert.equal((await next.getDepth()).waiting + (await next.getDepth()).prioritized, 0, 'nothing written to the new layout');

      // Drained (here: discarded by hand), the new count is taken; the old process is told, and enqueues nothing more.
      await db.redis.del(
        `{conveyor:${one.controller}}:${one.controller}:prioritized`,
        `{conveyor:${one.controller}}:${one.controller}:wait`,
      );
      await next.enqueue({ key: widgetKey('b'), reason: 'event' });
      assert.equal((await next.getDepth()).prioritized, 1);
      await assert.rejects(
        old.checkEpoch(),
        (e: unknown) => e instanceof ConfigError && /is 1, but the queue in Redis is split into 3 partitions/.test(e.message),
      );
      await assert.rejects(old.enqueue({ key: widgetKey('c'), reason: 'event' }), ConfigError);
      const fresh = new ReconcileQueue(one);
      try {
        await assert.rejects(fresh.enqueue({ key: widgetKey('c'), reason: 'event' }), /split into 3 partitions and still holds 1 request/);
      } finally {
        await fresh.close();
      }
      // A Redis that lost its data lost the record too: the next check notices the loss and records the count again.
      assert.equal(await next.checkEpoch(), false, 'arms the epochs');
      await db.redis.flushall();
      assert.equal(await next.checkEpoch(), true);
      assert.equal(await db.redis.get(`{conveyor:${one.controller}}:partitions`), '3');
    } finally {
      await old.close();
      await next.close();
    }
  });
});

describe('Function: concurrencyShares', () => {
  for (const [concurrency, partitions, shares] of [
    [10, 1, [10]],
    [10, 3, [4, 3, 3]],
    [3, 3, [1, 1, 1]],
    [1, 3, [1, 1, 1]],
    [7, 2, [4, 3]],
  ] as const) {
    it(`splits ${concurrency} slots over ${partitions} partitions as ${shares.join(', ')}`, () => {
      assert.deepEqual(concurrencyShares(concurrency, partitions), shares);
    });
  }
});
