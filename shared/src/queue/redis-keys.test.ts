// Unit tests of the Redis key names: the exact names (a contract between processes), hash slots, and what is rejected.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobKeyPrefix } from './bullmq-internals.ts';
import { apiBudgetKey, controllerKeys, queueLocation } from './redis-keys.ts';

/** The part of a key Redis Cluster hashes: between the first `{` and the next `}`, when not empty. */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

function keysOf(prefix: string, controller: string): string[] {
  const keys = controllerKeys(prefix, controller);
  return [keys.epoch, keys.watchCursor, keys.parkedKeys, keys.desiredWorkers, keys.statsBucket(172_800_000)];
}

describe('Function: controllerKeys', () => {
  it('names each key of a controller after its hash tag, with `:` between segments', () => {
    const keys = controllerKeys('conveyor', 'widgets');
    assert.deepEqual(keys.queue, { prefix: '{conveyor:widgets}', name: 'widgets' });
    assert.deepEqual(
      {
        epoch: keys.epoch,
        watchCursor: keys.watchCursor,
        parkedKeys: keys.parkedKeys,
        desiredWorkers: keys.desiredWorkers,
        stats: keys.statsBucket(172_800_000),
      },
      {
        epoch: '{conveyor:widgets}:epoch',
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

  it("puts none of Conveyor's keys inside BullMQ's namespace of the queue, where BullMQ keeps jobs", () => {
    const bullmqNamespace = jobKeyPrefix(queueLocation('conveyor', 'widgets'));
    for (const key of keysOf('conveyor', 'widgets')) assert.equal(key.startsWith(bullmqNamespace), false, key);
  });

  it('rejects a controller name that would break the layout, and a stats bucket that is not an integer', () => {
    for (const name of ['Widgets', 'a:b', 'a}b', '', '-a']) assert.throws(() => controllerKeys('conveyor', name), RangeError, name);
    assert.throws(() => controllerKeys('conveyor', 'widgets').statsBucket(1.5), RangeError);
  });
});

describe('Function: apiBudgetKey', () => {
  it('names one bucket per installation, shared by every controller', () => {
    assert.equal(apiBudgetKey('conveyor'), 'conveyor:api-budget');
    assert.notEqual(apiBudgetKey('conveyor'), apiBudgetKey('other'));
  });
});
