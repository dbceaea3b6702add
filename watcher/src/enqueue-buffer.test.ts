import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, type ObjectKey } from '@conveyor/shared';
import { EnqueueBuffer, type WatcherRequest } from './enqueue-buffer.ts';

const logger = createLogger({ level: 'silent' });
const key = (name: string): ObjectKey => ({ group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name });

describe('EnqueueBuffer', () => {
  it('merges repeats of a waiting key, keeping the most urgent reason, and batches', async () => {
    const batches: WatcherRequest[][] = [];
    const buffer = new EnqueueBuffer({ sink: { enqueueBatch: async (r) => void batches.push([...r]) }, logger, batchSize: 2 });
    buffer.add({ key: key('a'), reason: 'resync' });
    buffer.add({ key: key('b'), reason: 'event' });
    buffer.add({ key: key('a'), reason: 'event' });
    buffer.add({ key: key('c'), reason: 'resync' });
    await buffer.drain();
    assert.deepEqual(
      batches.map((b) => b.map((r) => `${r.key.name}:${r.reason}`)),
      [['a:event', 'b:event'], ['c:resync']],
    );
  });

  it('keeps every request through queue failures and resolves drain only once they are in', async () => {
    let failures = 3;
    const received: string[] = [];
    const buffer = new EnqueueBuffer({
      sink: {
        enqueueBatch: async (requests) => {
          if (failures-- > 0) throw new Error('redis away');
          received.push(...requests.map((r) => r.key.name));
        },
      },
      logger,
      maxBackoffMs: 20,
    });
    for (const name of ['a', 'b', 'c']) buffer.add({ key: key(name), reason: 'event' });
    let drained = false;
    const drain = buffer.drain().then(() => {
      drained = true;
    });
    buffer.add({ key: key('d'), reason: 'event' });
    await drain;
    assert.ok(drained);
    assert.deepEqual(received.slice(0, 3).sort(), ['a', 'b', 'c']);
    await buffer.drain();
    assert.deepEqual(received.sort(), ['a', 'b', 'c', 'd']);
  });
});
