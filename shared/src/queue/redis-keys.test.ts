// Unit tests of the Redis key names: the exact names (a contract between processes), hash slots, and what is rejected.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobKeyPrefix } from './bullmq-internals.ts';
import { apiBudgetKey, controllerKeys, partitionIndex, queueLocation } from './redis-keys.ts';

/** The part of a key Redis Cluster hashes: between the first `{` and the next `}`, when not empty. */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

function keysOf(prefix: string, controller: string, partitions = 1): string[] {
  const keys = controllerKeys(prefix, controller, partitions);
  return [
    ...keys.partitions.flatMap((partition) => [partition.epoch, partition.parkedKeys]),
    keys.layout,
    keys.watchCursor,
    keys.desiredWorkers,
    keys.statsBucket(172_800_000),
  ];
}

describe('Function: controllerKeys', () => {
  it('names each key of a controller after its hash tag, with `:` between segments', () => {
    const keys = controllerKeys('conveyor', 'widgets');
    const [partition] = keys.partitions;
    assert.equal(keys.partitions.length, 1);
    assert.deepEqual(partition?.queue, { prefix: '{conveyor:widgets}', name: 'widgets' });
    assert.deepEqual(
      {
        epoch: partition?.epoch,
        layout: keys.layout,
        watchCursor: keys.watchCursor,
        parkedKeys: partition?.parkedKeys,
        desiredWorkers: keys.desiredWorkers,
        stats: keys.statsBucket(172_800_000),
      },
      {
        epoch: '{conveyor:widgets}:epoch',
        layout: '{conveyor:widgets}:partitions',
        watchCursor: '{conveyor:widgets}:watch-cursor',
        parkedKeys: '{conveyor:widgets}:parked-keys',
        desiredWorkers: '{conveyor:widgets}:desired-workers',
        stats: '{conveyor:widgets}:stats:172800000',
      },
    );
  });

  it('keeps every key of a controller in the slot of its queue, and apart from other controllers', () => {
    for (const key of keysOf('conveyor', 'widgets')) assert.equal(hashedPart(key), 'conveyor:widgets', key);
    const others = new Set(keysOf('conveyor', 'gadgets'));
    for (const key of keysOf('conveyor', 'widgets')) assert.equal(others.has(key), false, key);
  });

  it('gives each partition of a partitioned queue its own hash tag, and keeps the controller-wide keys under the controller tag', () => {
    const keys = controllerKeys('conveyor', 'widgets', 3);
    assert.deepEqual(
      keys.partitions.map((p) => [p.queue.prefix, p.queue.name, p.epoch, p.parkedKeys]),
      [0, 1, 2].map((i) => [
        `{conveyor:widgets:p${i}}`,
        'widgets',
        `{conveyor:widgets:p${i}}:epoch`,
        `{conveyor:widgets:p${i}}:parked-keys`,
      ]),
    );
    for (const key of [keys.layout, keys.watchCursor, keys.desiredWorkers, keys.blocked])
      assert.equal(hashedPart(key), 'conveyor:widgets', key);
    const all = keysOf('conveyor', 'widgets', 3);
    assert.equal(new Set(all).size, all.length, 'no two keys alike');
    for (const key of keysOf('conveyor', 'gadgets', 3)) assert.equal(all.includes(key), false, key);
  });

  it('places a key, and every job id made for it, in one partition, and spreads keys evenly', () => {
    const keys = controllerKeys('conveyor', 'widgets', 4);
    const encoded = 'example.com%2Fv1%2Fwidgets%2Fns%2Fw-1';
    assert.equal(keys.partitionOf(`${encoded}~abc`), keys.partitionOf(encoded));
    assert.equal(keys.partitionOf(encoded).index, partitionIndex(encoded, 4));
    // The index is part of the contract between processes: FNV-1a 32 of the encoded key, modulo the count.
    assert.equal(partitionIndex('a', 4), 0xe40c292c % 4);
    assert.equal(controllerKeys('conveyor', 'widgets').partitionOf(encoded).index, 0);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4_000; i++) {
      const index = partitionIndex(`example.com%2Fv1%2Fwidgets%2Fns%2Fw-${i}`, 4);
      counts[index] = (counts[index] ?? 0) + 1;
    }
    for (const count of counts) assert.ok(count > 850 && count < 1_150, `uneven: ${counts.join(', ')}`);
  });

  it("puts none of Conveyor's keys inside BullMQ's namespace of the queue, where BullMQ keeps jobs", () => {
    const bullmqNamespace = jobKeyPrefix(queueLocation('conveyor', 'widgets'));
    for (const key of keysOf('conveyor', 'widgets')) assert.equal(key.startsWith(bullmqNamespace), false, key);
  });

  it('rejects a controller name that would break the layout, and a stats bucket that is not an integer', () => {
    for (const name of ['Widgets', 'a:b', 'a}b', '', '-a']) assert.throws(() => controllerKeys('conveyor', name), RangeError, name);
    for (const partitions of [0, 1.5, 257])
      assert.throws(() => controllerKeys('conveyor', 'widgets', partitions), RangeError, String(partitions));
    assert.throws(() => controllerKeys('conveyor', 'widgets').statsBucket(1.5), RangeError);
  });
});

describe('Function: apiBudgetKey', () => {
  it('names one bucket per installation, shared by every controller', () => {
    assert.equal(apiBudgetKey('conveyor'), 'conveyor:api-budget');
    assert.notEqual(apiBudgetKey('conveyor'), apiBudgetKey('other'));
  });
});
