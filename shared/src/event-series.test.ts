import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { EVENT_SERIES_TTL_MS, EVENT_SPAM_BURST, EVENT_SPAM_REFILL_MS, RedisEventSeries } from './event-series.ts';

const identity = { uid: 'uid-1', type: 'Warning', reason: 'BackendSlow', action: 'Reconcile', note: 'the backend answered in 30s' };

describe('Event series and spam filter (RedisEventSeries) on a real Redis', () => {
  let n = 0;
  let now = 1_000_000;
  const fresh = () => new RedisEventSeries(db.redis, { prefix: 'conveyor', controller: `c${++n}`, clock: { now: () => now } });

  const db = privateRedis();

  it('counts repeats of one Event under the name its first occurrence chose; another note is another series', async () => {
    const series = fresh();
    const first = await series.note(identity, 'w-1.a');
    const second = await series.note(identity, 'w-1.b');
    assert.deepEqual(first, { count: 1, name: 'w-1.a', write: true });
    assert.deepEqual(second, { count: 2, name: 'w-1.a', write: true });
    assert.deepEqual(await series.note({ ...identity, note: 'another note' }, 'w-1.c'), { count: 1, name: 'w-1.c', write: true });
  });

  it(`lets one object write ${EVENT_SPAM_BURST} at once, then holds occurrences back but keeps counting, and refills one per interval`, async () => {
    const series = fresh();
    const writes: boolean[] = [];
    for (let i = 0; i < EVENT_SPAM_BURST + 5; i++) writes.push((await series.note(identity, 'w-1.a')).write);
    assert.equal(writes.filter(Boolean).length, EVENT_SPAM_BURST);
    assert.deepEqual(writes.slice(EVENT_SPAM_BURST), [false, false, false, false, false]);
    now += EVENT_SPAM_REFILL_MS;
    assert.deepEqual(await series.note(identity, 'w-1.a'), { count: EVENT_SPAM_BURST + 6, name: 'w-1.a', write: true });
  });

  it('ends a series (its Redis record expires) a series lifetime after its last occurrence', async () => {
    const series = fresh();
    await series.note(identity, 'w-1.a');
    const [key] = await db.redis.keys(`{conveyor:c${n}}:event-series:*`);
    assert.ok(key !== undefined, 'the series is kept in the controller slot');
    const ttl = await db.redis.pttl(key);
    assert.ok(ttl > EVENT_SERIES_TTL_MS - 5_000 && ttl <= EVENT_SERIES_TTL_MS, `expires in ${ttl} ms`);
  });
});
