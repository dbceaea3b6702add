import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { Redis } from 'ioredis';
import { configSchema } from './config.ts';
import { readReconcileStats, recordReconcile } from './reconcile-stats.ts';

describe('Reconcile stats in Redis', () => {
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.close();
  });

  it('gives the mean duration, error count and rate of the window, and forgets older buckets', async () => {
    const { redis: settings } = configSchema.parse({ redis: { url: server.url, prefix: 'stats' } });
    const now = 1_000_000_000;
    await recordReconcile(redis, settings, 'widgets', 100, false, now - 5_000);
    await recordReconcile(redis, settings, 'widgets', 300, true, now - 25_000);
    await recordReconcile(redis, settings, 'widgets', 9_999, false, now - 90_000);
    await recordReconcile(redis, settings, 'gadgets', 5_000, false, now);
    const stats = await readReconcileStats(redis, settings, 'widgets', 60_000, now);
    assert.deepEqual(stats, { count: 2, errors: 1, meanMs: 200, perSecond: 2 / 60 });
    const none = await readReconcileStats(redis, settings, 'nothing', 60_000, now);
    assert.equal(none.meanMs, undefined);
  });
});
