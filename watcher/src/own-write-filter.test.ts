import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, type OwnWriteVerdict } from '@conveyor/shared';
import { EnqueueBuffer } from './enqueue-buffer.ts';
import { OwnWriteFilter } from './own-write-filter.ts';

const logger = createLogger({ level: 'silent' });

/** A lookup that answers from a script: one verdict list per call, then 'foreign'; or throws. */
function scriptedLookup(answers: (OwnWriteVerdict | 'throw')[][]) {
  const calls: string[][] = [];
  return {
    calls,
    async check(events: readonly { id: string; resourceVersion: string }[]): Promise<OwnWriteVerdict[]> {
      calls.push(events.map((e) => e.resourceVersion));
      const next = answers.shift() ?? [];
      if (next.includes('throw')) throw new Error('redis is away');
      return events.map((_, i) => (next[i] as OwnWriteVerdict | undefined) ?? 'foreign');
    },
  };
}

function filterWith(lookup: ReturnType<typeof scriptedLookup>, maxHoldMs = 2_000) {
  const buffer = new EnqueueBuffer({ sink: { enqueueBatch: async () => {} }, logger });
  return new OwnWriteFilter({ lookup, buffer, logger, maxHoldMs });
}

/** Submits events with these resourceVersions; resolves with what each was settled as. */
function submitAll(filter: OwnWriteFilter, rvs: string[]): Promise<boolean[]> {
  return Promise.all(rvs.map((rv) => new Promise<boolean>((resolve) => filter.submit('0123456789abcdef', rv, resolve))));
}

describe('Class: OwnWriteFilter', () => {
  it('drops own writes and passes everything else, asking once for the events of one tick', async () => {
    const lookup = scriptedLookup([['own', 'foreign', 'own']]);
    const settled = await submitAll(filterWith(lookup), ['1', '2', '3']);
    assert.deepEqual(settled, [true, false, true]);
    assert.deepEqual(lookup.calls, [['1', '2', '3']]);
  });

  it('holds an event while a write of ours to its object is in flight, then decides on the record', async () => {
    const lookup = scriptedLookup([['in-flight'], ['in-flight'], ['own']]);
    assert.deepEqual(await submitAll(filterWith(lookup), ['7']), [true]);
    assert.equal(lookup.calls.length, 3);
  });

  it('passes an event whose in-flight write is never recorded once the hold is over, and any event when the lookup fails', async () => {
    const never = scriptedLookup(Array.from({ length: 100 }, () => ['in-flight' as const]));
    assert.deepEqual(await submitAll(filterWith(never, 30), ['8']), [false]);
    const failing = scriptedLookup([['throw']]);
    assert.deepEqual(await submitAll(filterWith(failing), ['9', '10']), [false, false]);
  });

  it('drains only once every event submitted before is settled, held ones included', async () => {
    const lookup = scriptedLookup([['in-flight'], ['own']]);
    const filter = filterWith(lookup);
    const order: string[] = [];
    filter.submit('0123456789abcdef', '11', () => order.push('settled'));
    await filter.drain();
    order.push('drained');
    assert.deepEqual(order, ['settled', 'drained']);
    assert.equal(filter.size, 0);
  });
});
