import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { Redis } from 'ioredis';
import { RedisApiBudget } from './api-budget.ts';

describe('Class: RedisApiBudget', () => {
  let server: RedisServer;
  const connections: Redis[] = [];
  const connect = () => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    connections.push(redis);
    return redis;
  };
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    for (const c of connections) c.disconnect();
    await server.close();
  });

  /** A budget whose sleeps return at once, so the test reads the reservations instead of waiting them out. */
  function budget(prefix: string, qps: number, burst: number) {
    return new RedisApiBudget({ redis: connect(), prefix, qps, burst, clock: { sleep: async () => {} } });
  }

  /**
   * Takes a token and brackets the moment its reservation is due: Redis decided at some instant
   * between `start` and `end`, and answered "wait `waited` ms" from that instant. Bounds instead of
   * one timestamp keep the checks exact however slowly the machine runs.
   */
  async function reserve(b: RedisApiBudget): Promise<{ waited: number; earliest: number; latest: number }> {
    const start = Date.now();
    const waited = await b.take();
    const end = Date.now();
    return { waited, earliest: start + waited - 1, latest: end + waited + 1 };
  }

  it('hands out the burst at once, then one token per 1/qps seconds', async () => {
    const b = budget('burst', 1, 3);
    const taken = [];
    for (let i = 0; i < 7; i++) taken.push(await reserve(b));
    assert.deepEqual(
      taken.slice(0, 3).map((t) => t.waited),
      [0, 0, 0],
    );
    for (let i = 4; i < 7; i++) {
      const [before, now] = [taken[i - 1], taken[i]] as [(typeof taken)[number], (typeof taken)[number]];
      // Each reservation past the burst is due exactly 1 s after the previous one.
      assert.ok(
        now.earliest - before.latest <= 1_000 && now.latest - before.earliest >= 1_000,
        `take ${i + 1}: ${JSON.stringify([before, now])}`,
      );
    }
  });

  it('is one bucket for every worker sharing the prefix', async () => {
    const workers = [budget('shared', 2, 4), budget('shared', 2, 4), budget('shared', 2, 4)];
    const first = Date.now();
    const taken = [];
    for (let round = 0; round < 8; round++) for (const w of workers) taken.push(await reserve(w));
    // The bucket was first touched between `first` and the return of the first take.
    const firstEnd = (taken[0]?.latest ?? Number.NaN) - 1;
    // 24 takes at 2 qps with 4 in the bucket: the last is due (24 - 4) / 2 = 10 s after the first.
    assert.equal(taken.filter((t) => t.waited === 0).length, 4);
    const last = taken.at(-1);
    assert.ok(last !== undefined && last.earliest - firstEnd <= 10_000 && last.latest - first >= 10_000, JSON.stringify(last));
    assert.equal(await budget('other-installation', 2, 4).take(), 0, 'another prefix has its own bucket');
  });

  it('pauses every taker for the Retry-After of a 429, even one that reserved before it', async () => {
    const a = new RedisApiBudget({ redis: connect(), prefix: 'paused', qps: 2, burst: 1 });
    const b = new RedisApiBudget({ redis: connect(), prefix: 'paused', qps: 2, burst: 1 });
    assert.equal(await a.take(), 0);
    const started = Date.now();
    // b reserves the next token (due in 500 ms), then a sees a 429 with Retry-After 1 s.
    const taking = b.take();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await a.pause(1_000);
    await taking;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1_000 && elapsed < 2_500, `b went after ${elapsed} ms, not after the pause`);
  });

  it('refuses a rate or burst it cannot honour', () => {
    assert.throws(() => new RedisApiBudget({ redis: connect(), prefix: 'x', qps: 0, burst: 1 }), /qps must be above 0/);
    assert.throws(() => new RedisApiBudget({ redis: connect(), prefix: 'x', qps: 1, burst: 0 }), /burst must be at least 1/);
  });
});
