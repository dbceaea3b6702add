import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { OWN_WRITE_SLOTS, OwnWriteLookup, OwnWriteRecorder, ownWriteId } from './own-writes.ts';
import { jobLockKey } from './queue/bullmq-internals.ts';
import { controllerKeys } from './queue/redis-keys.ts';

const child = { group: '', plural: 'configmaps', namespace: 'default', name: 'w-1-widget' };
const id = ownWriteId(child);

describe('Own-write records (OwnWriteRecorder, OwnWriteLookup) on a real Redis', () => {
  let n = 0;
  /** A recorder and a lookup of a fresh controller name, so tests share no records. */
  const fresh = (partitions = 1) => {
    const options = { prefix: 'conveyor', controller: `c${++n}`, partitions };
    return {
      recorder: new OwnWriteRecorder(db.redis, options),
      lookup: new OwnWriteLookup(db.redis, options),
      keys: controllerKeys('conveyor', options.controller, partitions),
    };
  };

  const db = privateRedis();

  it('tells the resourceVersion a write produced from any other, for the same object', async () => {
    const { recorder, lookup } = fresh();
    const run = recorder.forRun();
    await run.beforeWrite(child);
    await run.afterWrite(child, '101');
    assert.deepEqual(
      await lookup.check([
        { id, resourceVersion: '101' },
        { id, resourceVersion: '102' },
        { id: ownWriteId({ ...child, name: 'other' }), resourceVersion: '101' },
      ]),
      ['own', 'foreign', 'foreign'],
    );
  });

  it('says a write is in flight between its start and its answer, and forgets a failed one', async () => {
    const { recorder, lookup } = fresh();
    const run = recorder.forRun();
    await run.beforeWrite(child);
    assert.deepEqual(await lookup.check([{ id, resourceVersion: '200' }]), ['in-flight']);
    await run.afterWrite(child, undefined);
    assert.deepEqual(await lookup.check([{ id, resourceVersion: '200' }]), ['foreign']);
  });

  for (const partitions of [1, 3]) {
    it(`records the writes of a run that holds its job lock, and not those of a run that lost it (${partitions} queue partitions)`, async () => {
      const { recorder, lookup, keys } = fresh(partitions);
      // A job id as the queue makes them (`<encoded key>~<n>`): its key's partition holds its lock.
      const jobId = 'example.com%2Fv1%2Fwidgets%2Fdefault%2Fw-7~x1';
      await db.redis.set(jobLockKey(keys.partitionOf(jobId).queue, jobId), 'token-a', 'PX', 30_000);
      const holder = recorder.forRun({ jobId, token: 'token-a' });
      await holder.beforeWrite(child);
      await holder.afterWrite(child, '301');
      // The lock expired and another worker took the job: the first run is stale.
      await db.redis.set(jobLockKey(keys.partitionOf(jobId).queue, jobId), 'token-b', 'PX', 30_000);
      await holder.beforeWrite(child);
      await holder.afterWrite(child, '302');
      assert.deepEqual(
        await lookup.check([
          { id, resourceVersion: '301' },
          { id, resourceVersion: '302' },
        ]),
        ['own', 'foreign'],
      );
    });
  }

  it(`keeps the last ${OWN_WRITE_SLOTS} resourceVersions of an object, for a minute after its last write`, async () => {
    const { recorder, lookup, keys } = fresh();
    const run = recorder.forRun();
    for (let rv = 1; rv <= OWN_WRITE_SLOTS + 2; rv++) {
      await run.beforeWrite(child);
      await run.afterWrite(child, String(rv));
    }
    const verdicts = await lookup.check(Array.from({ length: OWN_WRITE_SLOTS + 2 }, (_, i) => ({ id, resourceVersion: String(i + 1) })));
    assert.deepEqual(verdicts, ['foreign', 'foreign', ...Array(OWN_WRITE_SLOTS).fill('own')]);
    const ttl = await db.redis.pttl(keys.ownWrites(id));
    assert.ok(ttl > 50_000 && ttl <= 60_000, `ttl ${ttl}`);
  });
});
