// The race detector is itself tested: on synthetic logs, and on logs of deliberately broken queue protocols on a real Redis.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatKey, keyToJobId, type ObjectKey } from '@conveyor/shared/object-key';
import { jobLockKey } from '@conveyor/shared/queue/bullmq-internals';
import { type QueueWorker, startQueueWorker } from '@conveyor/shared/queue/queue-worker';
import { type QueueSettings, ReconcileQueue } from '@conveyor/shared/queue/reconcile-queue';
import { queueLocation } from '@conveyor/shared/queue/redis-keys';
import { encodeRequest } from '@conveyor/shared/queue/request-payload';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { type JobsOptions, Queue } from 'bullmq';
import { gate, queueSettings, waitFor, widgetKey } from '../support/queue-fixtures.ts';
import { detectRaces, type LastEvent, type RaceRecord } from './detector.ts';
import { queueLeftovers, raceKeys, readRaceLog, recordEvents, recordingProcessor, seededRandom } from './recorder.ts';

const K = 'example.com/v1/widgets/default/a';
const start = (run: string, at: number, observed: number, worker = 1, key = K): RaceRecord => ({
  t: 'start',
  run,
  key,
  worker,
  at,
  observed,
});
const end = (run: string, at: number, outcome = 'done'): RaceRecord => ({ t: 'end', run, at, outcome });
const lastEvents = (seq: number, at: number) => new Map<string, LastEvent>([[K, { seq, at }]]);

describe('detectRaces on synthetic logs', () => {
  it('passes a log where runs of a key follow each other and the last one saw the last event', () => {
    const report = detectRaces([start('1:1', 100, 1), end('1:1', 110), start('2:1', 110, 2, 2), end('2:1', 120)], lastEvents(2, 105));
    assert.equal(report.ok, true);
    assert.equal(report.runs, 2);
  });

  it('reports a lost update when the final run started before the last event', () => {
    const report = detectRaces([start('1:1', 100, 1), end('1:1', 110)], lastEvents(2, 105));
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.lostUpdates.map((l) => [l.key, l.lastEvent.seq, l.finalRun?.run]),
      [[K, 2, '1:1']],
    );
  });

  it('reports a lost update when the final run did not observe the last event, or there was no run at all', () => {
    const stale = detectRaces([start('1:1', 200, 1), end('1:1', 210)], lastEvents(2, 105));
    assert.equal(stale.lostUpdates.length, 1);
    const none = detectRaces([], lastEvents(1, 105));
    assert.equal(none.lostUpdates[0]?.finalRun, undefined);
  });

  it('reports two runs of one key that overlap, but not runs of different keys', () => {
    const report = detectRaces(
      [start('1:1', 100, 1), start('2:1', 105, 1, 2), end('2:1', 108), end('1:1', 110), start('2:2', 100, 1, 2, `${K}x`), end('2:2', 110)],
      new Map(),
    );
    assert.deepEqual(
      report.overlaps.map((o) => [o.key, o.first.run, o.second.run]),
      [[K, '1:1', '2:1']],
    );
  });

  it('takes a run of a SIGKILLed worker to end at the kill: the next holder after it is fine, one before it overlaps', () => {
    const killed = [{ worker: 1, at: 150 }];
    const after = detectRaces([start('1:1', 100, 1), start('2:1', 2_000, 1, 2), end('2:1', 2_010)], lastEvents(1, 90), killed);
    assert.equal(after.ok, true, 'recovered by another worker after the kill');
    assert.equal(after.killedRuns, 1);
    const before = detectRaces([start('1:1', 100, 1), start('2:1', 120, 1, 2), end('2:1', 130)], lastEvents(1, 90), killed);
    assert.equal(before.overlaps.length, 1, 'another worker started the key while the victim was still alive');
  });

  it('never counts a killed run as the final reconcile, and reports a run that never ended on a live worker', () => {
    const killedLast = detectRaces([start('1:1', 100, 1)], lastEvents(1, 90), [{ worker: 1, at: 150 }]);
    assert.equal(killedLast.lostUpdates.length, 1);
    const unfinished = detectRaces([start('1:1', 100, 1)], lastEvents(1, 90));
    assert.deepEqual(
      unfinished.unfinished.map((u) => u.run),
      ['1:1'],
    );
    assert.equal(unfinished.ok, false);
  });

  it('fails a run that left queue state in Redis', () => {
    const report = detectRaces([start('1:1', 100, 1), end('1:1', 110)], lastEvents(1, 90), [], ['{conveyor:x}:x:de:abc']);
    assert.equal(report.ok, false);
    assert.deepEqual(report.leftovers, ['{conveyor:x}:x:de:abc']);
  });
});

describe('detectRaces on deliberately broken protocols (real Redis, real BullMQ)', () => {
  const db = privateRedis();

  /** A worker that records every reconcile; the first `held` reconciles wait until `release`. */
  function recordedWorker(settings: QueueSettings, concurrency: number, held: number) {
    const keys = raceKeys(settings.controller);
    const hold = gate();
    let started = 0;
    const heldJobs: string[] = [];
    const worker: QueueWorker = startQueueWorker({
      ...settings,
      concurrency,
      processor: recordingProcessor({
        redis: db.redis,
        keys,
        worker: 1,
        random: seededRandom(1),
        behaviour: { minMs: 1, maxMs: 1, errorRate: 0, requeueRate: 0, requeueMs: 0 },
        hold: async (request) => {
          if (++started <= held) {
            heldJobs.push(request.jobId);
            await hold.promise;
          }
        },
      }),
    });
    return { keys, worker, release: hold.open, started: () => started, heldJobs };
  }

  /** Adds a request the broken way: BullMQ directly, with the given deduplication (or none). */
  async function brokenAdd(queue: Queue, key: ObjectKey, n: number, deduplication: JobsOptions['deduplication'] | undefined) {
    const opts: JobsOptions = { jobId: `${keyToJobId(key)}~broken${n}`, removeOnComplete: true };
    if (deduplication !== undefined) opts.deduplication = deduplication;
    await queue.add('event', encodeRequest({ reason: 'event' }, Date.now()), opts);
  }

  async function drained(settings: QueueSettings, queue: ReconcileQueue) {
    await waitFor('queue drained', async () => {
      const d = await queue.getDepth();
      return d.waiting + d.prioritized + d.delayedDue + d.delayedLater + d.active === 0;
    });
    return await queueLeftovers(db.redis, settings.redis.prefix, settings.controller, settings.queue.partitions);
  }

  it('reports the lost update of plain BullMQ dedup (an event during a reconcile is dropped), and none with Conveyor’s enqueue', async () => {
    for (const protocol of ['plain-dedup', 'conveyor'] as const) {
      const settings = queueSettings(db.server.url);
      const location = queueLocation(settings.redis.prefix, settings.controller);
      const raw = new Queue(location.name, { connection: db.redis, prefix: location.prefix });
      const queue = new ReconcileQueue(settings);
      const { keys, worker, release, started } = recordedWorker(settings, 2, 1);
      const last = new Map<string, LastEvent>();
      const key = widgetKey('a');
      const send = async (n: number) => {
        await recordEvents(db.redis, keys, [key], last);
        if (protocol === 'plain-dedup') await brokenAdd(raw, key, n, { id: keyToJobId(key) });
        else await queue.enqueue({ key, reason: 'event' });
      };
      try {
        await send(1);
        await waitFor('first reconcile running', () => started() === 1);
        await send(2);
        release();
        const leftovers = await drained(settings, queue);
        const report = detectRaces(await readRaceLog(db.redis, keys), last, [], leftovers);
        if (protocol === 'plain-dedup') {
          assert.deepEqual(
            report.lostUpdates.map((l) => [l.key, l.lastEvent.seq, l.finalRun?.observed]),
            [[formatKey(key), 2, 1]],
          );
        } else {
          assert.equal(report.ok, true, JSON.stringify(report));
        }
      } finally {
        await worker.close(1_000);
        await queue.close();
        await raw.close();
      }
    }
  });

  it('reports the overlap of a queue without dedup on a worker with concurrency 2', async () => {
    const settings = queueSettings(db.server.url);
    const location = queueLocation(settings.redis.prefix, settings.controller);
    const raw = new Queue(location.name, { connection: db.redis, prefix: location.prefix });
    const queue = new ReconcileQueue(settings);
    const { keys, worker, release, started } = recordedWorker(settings, 2, 2);
    const last = new Map<string, LastEvent>();
    const key = widgetKey('a');
    try {
      for (const n of [1, 2]) {
        await recordEvents(db.redis, keys, [key], last);
        await brokenAdd(raw, key, n, undefined);
      }
      await waitFor('both jobs of the key running at once', () => started() === 2);
      release();
      const leftovers = await drained(settings, queue);
      const report = detectRaces(await readRaceLog(db.redis, keys), last, [], leftovers);
      assert.equal(report.overlaps.length, 1, JSON.stringify(report));
      assert.equal(report.overlaps[0]?.key, formatKey(key));
      assert.equal(report.ok, false);
    } finally {
      await worker.close(1_000);
      await queue.close();
      await raw.close();
    }
  });

  it('reports the overlap a live worker causes when it loses its lock (the documented caveat), unlike a SIGKILLed one', async () => {
    const settings = queueSettings(db.server.url);
    const location = queueLocation(settings.redis.prefix, settings.controller);
    const queue = new ReconcileQueue(settings);
    const { keys, worker, release, started, heldJobs } = recordedWorker(settings, 2, 1);
    const last = new Map<string, LastEvent>();
    const key = widgetKey('a');
    try {
      await recordEvents(db.redis, keys, [key], last);
      await queue.enqueue({ key, reason: 'event' });
      await waitFor('first reconcile running', () => started() === 1);
      // What a long event-loop stall does: the lock expires while the reconcile still runs. The stalled
      // check hands the job to a free slot, which runs the key beside the first, still live, run.
      const held = heldJobs[0];
      assert.ok(held !== undefined, 'the first run holds a job');
      await db.redis.del(jobLockKey(location, held));
      await waitFor('the key started again while the first run is still held', () => started() === 2);
      release();
      const leftovers = await drained(settings, queue);
      const report = detectRaces(await readRaceLog(db.redis, keys), last, [], leftovers);
      assert.deepEqual(
        report.overlaps.map((o) => [o.key, o.first.run, o.second.run]),
        [[formatKey(key), '1:1', '1:2']],
      );
      assert.equal(report.lostUpdates.length, 0);
    } finally {
      await worker.close(1_000);
      await queue.close();
    }
  });
});
