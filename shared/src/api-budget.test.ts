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

  /** A budget whose sleeps are recorded instead of waited, so the test reads the reservations. */
  function budget(prefix: string, qps: number, burst: number) {
    const waits: number[] = [];
    const b = new RedisApiBudget({
      redis: connect(),
      prefix,
      qps,
      burst,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    return { b, waits };
  }

  it('hands out the burst at once, then one token per 1/qps seconds', async () => {
    const { b } = budget('burst', 10, 5);
    const waited: number[] = [];
    for (let i = 0; i < 8; i++) waited.push(await b.take());
    assert.deepEqual(waited.slice(0, 5), [0, 0, 0, 0, 0]);
    // The 6th, 7th, 8th reservations are due 100, 200, 300 ms from now (less the ms that passed meanwhile).
    for (const [i, expected] of [
      [5, 100],
      [6, 200],
      [7, 300],
    ] as const) {
      assert.ok(waited[i] !== undefined && waited[i] <= expected && waited[i] > expected - 60, `take ${i + 1} waited ${waited[i]}`);
    }
  });

  it('is one bucket for every worker sharing the prefix', async () => {
    const workers = [budget('shared', 20, 4), budget('shared', 20, 4), budget('shared', 20, 4)];
    const all: number[] = [];
    for (let round = 0; round < 8; round++) for (const w of workers) all.push(await w.b.take());
    // 24 takes at 20 qps with 4 in the bucket: the last is due about (24 - 4) / 20 = 1 s later.
    assert.equal(all.filter((w) => w === 0).length, 4);
    const last = Math.max(...all);
    assert.ok(last > 900 && last <= 1_000, `last reservation due in ${last} ms`);
    const other = budget('other-installation', 20, 4);
    assert.equal(await other.b.take(), 0, 'another prefix has its own bucket');
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
    assert.ok(elapsed >= 1_000 && elapsed < 1_400, `b went after ${elapsed} ms, not after the pause`);
  });

  it('refuses a rate or burst it cannot honour', () => {
    assert.throws(() => new RedisApiBudget({ redis: connect(), prefix: 'x', qps: 0, burst: 1 }), /qps must be above 0/);
    assert.throws(() => new RedisApiBudget({ redis: connect(), prefix: 'x', qps: 1, burst: 0 }), /burst must be at least 1/);
  });
});
