import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { waitFor } from '@conveyor/test/support/wait-for';
import { configSchema } from './config.ts';
import { readReconcileStats, reconcileRecorder, recordReconcile } from './reconcile-stats.ts';

describe('Reconcile stats in Redis', () => {
  const db = privateRedis();

  it('gives the mean duration, error count and rate of the window, and forgets older buckets', async () => {
    const { redis: settings } = configSchema.parse({ redis: { url: db.server.url, prefix: 'stats' } });
    const now = 1_000_000_000;
    await recordReconcile(db.redis, settings, 'widgets', 100, false, now - 5_000);
    await recordReconcile(db.redis, settings, 'widgets', 300, true, now - 25_000);
    await recordReconcile(db.redis, settings, 'widgets', 9_999, false, now - 90_000);
    await recordReconcile(db.redis, settings, 'gadgets', 5_000, false, now);
    const stats = await readReconcileStats(db.redis, settings, 'widgets', 60_000, now);
    assert.deepEqual(stats, { count: 2, errors: 1, meanMs: 200, perSecond: 2 / 60 });
    const none = await readReconcileStats(db.redis, settings, 'nothing', 60_000, now);
    assert.equal(none.meanMs, undefined);
  });

  it('the recorder of a worker sums reconciles per bucket and writes them together, each in the bucket it finished in', async () => {
    const { redis: settings } = configSchema.parse({ redis: { url: db.server.url, prefix: 'summed' } });
    let now = 2_000_000_000;
    const errors: unknown[] = [];
    const recorder = reconcileRecorder(db.redis, settings, 'widgets', { onError: (e) => errors.push(e), flushMs: 600_000, now: () => now });
    recorder.record(100, false);
    recorder.record(300, true);
    now += 10_000;
    recorder.record(200, false);
    assert.equal((await readReconcileStats(db.redis, settings, 'widgets', 60_000, now)).count, 0, 'nothing written before the flush');
    await recorder.flush();
    assert.deepEqual(await readReconcileStats(db.redis, settings, 'widgets', 60_000, now), {
      count: 3,
      errors: 1,
      meanMs: 200,
      perSecond: 3 / 60,
    });
    // Only the last bucket's reconcile is within a 10 s window: the first two were written to the bucket they finished in.
    assert.equal((await readReconcileStats(db.redis, settings, 'widgets', 10_000, now)).count, 1);
    await recorder.flush();
    assert.equal((await readReconcileStats(db.redis, settings, 'widgets', 60_000, now)).count, 3, 'a second flush writes nothing twice');
    assert.deepEqual(errors, []);
  });

  it('a recorder writes on its own after flushMs', async () => {
    const { redis: settings } = configSchema.parse({ redis: { url: db.server.url, prefix: 'timed' } });
    const recorder = reconcileRecorder(db.redis, settings, 'widgets', { onError: () => {}, flushMs: 20 });
    recorder.record(50, false);
    recorder.record(70, false);
    await waitFor('the recorder wrote', async () => (await readReconcileStats(db.redis, settings, 'widgets', 60_000)).count === 2);
  });
});
