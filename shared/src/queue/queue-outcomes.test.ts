// Integration tests on a real Redis: every Outcome's queue action, merging, dirty-while-running, parking and retry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueLeftovers } from '@conveyor/test/race/recorder';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { gate, queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { TerminalError } from '../errors.ts';
import { formatKey } from '../object-key.ts';
import { done, type Outcome, requeueAfter } from '../outcome.ts';
import { BULLMQ_KEY, bullmqKey, JOB_FIELD, jobKey } from './bullmq-internals.ts';
import { queueScripts } from './queue-scripts.ts';
import { type QueueWorker, type RequestContext, startQueueWorker } from './queue-worker.ts';
import { type QueueSettings, ReconcileQueue } from './reconcile-queue.ts';
import { controllerKeys, queueLocation } from './redis-keys.ts';

const db = privateRedis();

/** A queue and a worker on it, recording every reconcile, torn down by `close`. */
async function harness(
  processor: (request: RequestContext, runs: RequestContext[]) => Promise<Outcome>,
  queueConfig = {},
  concurrency = 2,
) {
  const settings = queueSettings(db.server.url, queueConfig);
  const queue = new ReconcileQueue(settings);
  const runs: RequestContext[] = [];
  let worker: QueueWorker | undefined;
  const start = () => {
    worker = startQueueWorker({
      ...settings,
      concurrency,
      processor: async (request) => {
        runs.push(request);
        return await processor(request, runs);
      },
    });
  };
  return {
    settings,
    queue,
    runs,
    start,
    async close() {
      await worker?.close(1_000);
      await queue.close();
    },
  };
}

/** Every key of this queue left in Redis (jobs, dedup keys, next-job hashes, notes), minus lifelong bookkeeping. */
async function leftovers(settings: QueueSettings): Promise<string[]> {
  return await queueLeftovers(db.redis, settings.redis.prefix, settings.controller, settings.queue.partitions);
}

describe('ReconcileQueue with a worker', () => {
  describe('when requests for one key arrive while it waits', () => {
    it('merges them into one job and one reconcile, then leaves nothing behind', async () => {
      const h = await harness(async () => done);
      try {
        for (let i = 0; i < 5; i++) await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await h.queue.enqueueBatch([
          { key: widgetKey('a'), reason: 'event' },
          { key: widgetKey('b'), reason: 'resync' },
        ]);
        const depth = await h.queue.getDepth();
        assert.equal(depth.prioritized + depth.waiting, 2, 'one job per key');
        h.start();
        await waitFor('both keys reconciled', async () => h.runs.length === 2 && (await h.queue.getDepth()).active === 0);
        assert.deepEqual(h.runs.map((r) => formatKey(r.key)).sort(), [
          'example.com/v1/widgets/default/a',
          'example.com/v1/widgets/default/b',
        ]);
        await waitFor('no jobs or dedup keys left', async () => (await leftovers(h.settings)).length === 0);
      } finally {
        await h.close();
      }
    });
  });

  describe('when a request arrives while the key is being reconciled', () => {
    it('runs the key again after the running reconcile, never beside it', async () => {
      const hold = gate();
      let running = 0;
      let overlap = false;
      const h = await harness(async (_request, runs) => {
        running++;
        if (running > 1) overlap = true;
        if (runs.length === 1) await hold.promise;
        running--;
        return done;
      });
      try {
        h.start();
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('first reconcile running', () => h.runs.length === 1);
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'manual' });
        const depth = await h.queue.getDepth();
        assert.equal(depth.active, 1);
        assert.equal(depth.waiting + depth.prioritized, 0, 'kept aside until the running one ends');
        hold.open();
        await waitFor('second reconcile', () => h.runs.length === 2);
        await waitFor('queue empty', async () => (await leftovers(h.settings)).length === 0);
        assert.equal(h.runs.length, 2, 'the two requests made during the run merged into one');
        assert.equal(h.runs[1]?.reason, 'manual', 'the latest request wins');
        assert.equal(overlap, false);
      } finally {
        await h.close();
      }
    });
  });

  describe('when a reconcile returns requeueAfter', () => {
    it('delays the same job without using an attempt, and a fresh event pulls it forward', async () => {
      const h = await harness(async (_request, runs) => (runs.length === 1 ? requeueAfter('1h') : done));
      try {
        h.start();
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('requeued', async () => (await h.queue.getDepth()).delayedLater === 1);
        assert.equal(h.runs.length, 1);
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('pulled forward and run', () => h.runs.length === 2);
        assert.equal(h.runs[1]?.jobId, h.runs[0]?.jobId, 'same job');
        assert.equal(h.runs[1]?.attempt, 1, 'no attempt used');
        await waitFor('queue empty', async () => (await leftovers(h.settings)).length === 0);
      } finally {
        await h.close();
      }
    });

    it('runs again at once when an event arrived during the reconcile that asked for the requeue', async () => {
      const hold = gate();
      const h = await harness(async (_request, runs) => {
        if (runs.length === 1) {
          await hold.promise;
          return requeueAfter('1h');
        }
        return done;
      });
      try {
        h.start();
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('first reconcile running', () => h.runs.length === 1);
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'manual' });
        hold.open();
        await waitFor('run again without waiting an hour', () => h.runs.length === 2);
        await waitFor('queue empty', async () => (await leftovers(h.settings)).length === 0);
        assert.equal(h.runs.length, 2, 'the request is consumed by the pulled-forward run');
        assert.equal(h.runs[1]?.reason, 'manual', 'the pulled-forward run carries the latest request');
        assert.ok((h.runs[1]?.enqueuedAt ?? 0) > (h.runs[0]?.enqueuedAt ?? 0), 'and its time');
      } finally {
        await h.close();
      }
    });
  });

  describe('when a reconcile fails', () => {
    it('retries with backoff, then parks the request with its last error and attempt count', async () => {
      const h = await harness(async () => {
        throw new Error('API said 500');
      });
      try {
        h.start();
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('parked', async () => (await h.queue.getDepth()).parked === 1);
        assert.deepEqual(
          h.runs.map((r) => r.attempt),
          [1, 2, 3],
        );
        const parked = await h.queue.listParked();
        assert.equal(parked.length, 1);
        assert.deepEqual(parked[0]?.key, widgetKey('a'));
        assert.equal(parked[0]?.reason, 'event');
        assert.equal(parked[0]?.error, 'Error: API said 500');
        assert.equal(parked[0]?.attempts, 3);
        assert.ok((parked[0]?.firstFailedAt ?? 0) < (parked[0]?.parkedAt ?? 0), 'first failure before the last, across the backoff');
        assert.deepEqual(await h.queue.countParked(), { terminal: 0, exhausted: 1 });
        const keys = controllerKeys(h.settings.redis.prefix, h.settings.controller).partitionOf(parked[0]?.jobId ?? '');
        assert.deepEqual(
          await leftovers(h.settings),
          [jobKey(keys.queue, parked[0]?.jobId ?? ''), bullmqKey(keys.queue, BULLMQ_KEY.failed), keys.parkedKeys].sort(),
          'only the parked job (and the note that its key has one)',
        );
      } finally {
        await h.close();
      }
    });

    /** Keys a (with `reasonOfA`) and b parked by a TerminalError; `fix()` makes later reconciles succeed. */
    async function parkTwo(reasonOfA: 'event' | 'manual', fixed: Outcome = done) {
      let fail = true;
      const h = await harness(async () => {
        if (fail) throw new TerminalError('spec.size must be positive');
        return fixed;
      });
      try {
        h.start();
        await h.queue.enqueue({ key: widgetKey('a'), reason: reasonOfA });
        await h.queue.enqueue({ key: widgetKey('b'), reason: 'event' });
        await waitFor('both parked', async () => (await h.queue.getDepth()).parked === 2);
      } catch (error) {
        await h.close();
        throw error;
      }
      return {
        h,
        fix: () => {
          fail = false;
        },
      };
    }

    it('drops a parked request once a later request for its key reconciles fine, and keeps the other keys parked', async () => {
      const { h, fix } = await parkTwo('event');
      try {
        fix();
        // The user fixed the spec of a: its watch event asks for a reconcile, which succeeds.
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('a reconciled', () => h.runs.length === 3);
        await waitFor('a no longer parked', async () => (await h.queue.listParked()).every((p) => p.key.name !== 'a'));
        assert.deepEqual(
          (await h.queue.listParked()).map((p) => p.key.name),
          ['b'],
        );
        assert.equal((await h.queue.getDepth()).parked, 1);
      } finally {
        await h.close();
      }
    });

    it('drops a parked request once a later reconcile of its key succeeds with a requeue-after, which never completes the job', async () => {
      const { h, fix } = await parkTwo('event', requeueAfter('10m'));
      try {
        fix();
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'manual' });
        await waitFor('a no longer parked', async () => (await h.queue.listParked()).every((p) => p.key.name !== 'a'));
        assert.deepEqual(
          (await h.queue.listParked()).map((p) => p.key.name),
          ['b'],
        );
        assert.equal((await h.queue.getDepth()).delayedLater, 1, 'a waits for its requeue');
      } finally {
        await h.close();
      }
    });

    it('discardParked removes parked requests without running them: one key, then all', async () => {
      const { h } = await parkTwo('event');
      try {
        assert.deepEqual(await h.queue.countParked(), { terminal: 2, exhausted: 0 });
        assert.equal(await h.queue.discardParked(widgetKey('a')), 1);
        assert.deepEqual(
          (await h.queue.listParked()).map((p) => p.key.name),
          ['b'],
        );
        assert.equal(await h.queue.discardParked(), 1);
        assert.deepEqual(await leftovers(h.settings), [], 'no job, no parked-keys note');
        assert.equal(h.runs.length, 2, 'nothing ran again');
      } finally {
        await h.close();
      }
    });

    it('parks a TerminalError at once, and retryParked gives it a fresh job with fresh attempts', async () => {
      const { h, fix } = await parkTwo('manual');
      try {
        assert.equal(h.runs.length, 2, 'no retry');
        const parked = await h.queue.listParked();
        assert.deepEqual(parked.map((p) => [p.key.name, p.error, p.attempts]).sort(), [
          ['a', 'TERMINAL: spec.size must be positive', 1],
          ['b', 'TERMINAL: spec.size must be positive', 1],
        ]);
        fix();
        assert.equal(await h.queue.retryParked(widgetKey('a')), 1);
        await waitFor('a reconciled again', () => h.runs.length === 3);
        assert.equal(h.runs[2]?.reason, 'manual', 'keeps its reason');
        assert.equal(h.runs[2]?.attempt, 1);
        assert.deepEqual(
          (await h.queue.listParked()).map((p) => p.key.name),
          ['b'],
        );
        assert.equal(await h.queue.retryParked(), 1);
        await waitFor('nothing parked or left', async () => (await leftovers(h.settings)).length === 0);
        assert.equal(h.runs.length, 4);
      } finally {
        await h.close();
      }
    });
  });

  describe('when a pause of the whole queue ends', () => {
    it('runs the requests again then, not when an idle worker slot’s blocked fetch times out', async () => {
      // More slots than requests: an idle slot waits in BullMQ's blocking fetch, which the pause's end must wake.
      const pauseMs = 300;
      const pausedAt: number[] = [];
      const doneAt: number[] = [];
      const h = await harness(
        async (request) => {
          if (request.runs <= 2) {
            pausedAt.push(Date.now());
            return { kind: 'blocked', code: 'AWS_CREDENTIALS_MISSING', message: 'Could not load credentials from any providers' };
          }
          doneAt.push(Date.now());
          return done;
        },
        { blockedPause: `${pauseMs}ms` },
        4,
      );
      try {
        h.start();
        await h.queue.enqueueBatch(['a', 'b', 'c'].map((name) => ({ key: widgetKey(name), reason: 'event' as const })));
        await waitFor('every request to run again', () => doneAt.length === 3, 15_000);
        const gapMs = Math.max(...doneAt) - Math.max(...pausedAt);
        // The bound is the behaviour: the pause, plus slack for a loaded machine, well short of the 5 s
        // BullMQ's blocked fetch sleeps when nothing wakes it.
        assert.ok(gapMs < pauseMs + 2_500, `the last ran again ${gapMs} ms after the last ${pauseMs} ms pause began`);
        assert.ok(
          h.runs.every((run) => run.attempt === 1),
          'the pauses used no attempt',
        );
      } finally {
        await h.close();
      }
    });
  });

  describe('when a failure no retry can fix blocks every request (missing credentials, no such function)', () => {
    it('pauses the whole queue and says why, spends no attempts, and runs everything once the cause is fixed', async () => {
      let fixed = false;
      const h = await harness(
        async () =>
          fixed ? done : { kind: 'blocked', code: 'AWS_CREDENTIALS_MISSING', message: 'Could not load credentials from any providers' },
        { attempts: 2, blockedPause: '300ms' },
        1,
      );
      try {
        const keys = ['a', 'b', 'c', 'd'].map((name) => widgetKey(name));
        await h.queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
        h.start();
        // Far more tries than `attempts` allows one request: had they been spent, everything would be parked.
        await waitFor('six paused tries', () => h.runs.length >= 6, 30_000);
        const blocked = await h.queue.getBlocked();
        assert.equal(blocked?.code, 'AWS_CREDENTIALS_MISSING');
        assert.equal(blocked?.message, 'Could not load credentials from any providers');
        assert.ok((blocked?.until ?? 0) > (blocked?.since ?? Number.POSITIVE_INFINITY) - 1);
        const depth = await h.queue.getDepth();
        assert.equal(depth.parked, 0, 'no request parked');
        assert.equal(depth.waiting + depth.prioritized + depth.active, 4, 'every request still queued');
        assert.ok(
          h.runs.every((run) => run.attempt === 1),
          'no attempt spent',
        );
        // One request at a time tries after each pause, not the whole backlog at once.
        assert.ok(h.runs.length < 4 * 6, `the queue paused between tries (${h.runs.length} runs)`);

        fixed = true;
        await waitFor('every request reconciled once fixed', async () => {
          const d = await h.queue.getDepth();
          return d.waiting + d.prioritized + d.active + d.delayedDue + d.delayedLater === 0;
        });
        assert.equal((await h.queue.getDepth()).parked, 0);
        await waitFor('the pause note cleared', async () => (await h.queue.getBlocked()) === undefined, 5_000);
      } finally {
        await h.close();
      }
    });
  });
});

describe('the note of a job’s first failure', () => {
  it('is written once on a job that exists, and never makes a hash for a job BullMQ already deleted', async () => {
    const scripts = queueScripts(db.redis);
    const location = queueLocation('conveyor-notes', 'notes');
    const live = jobKey(location, 'k~live');
    await db.redis.hset(live, JOB_FIELD.name, 'event');
    assert.equal(await scripts.noteFirstFailure(live, 1_000), 1);
    assert.equal(await scripts.noteFirstFailure(live, 2_000), 0);
    assert.equal(await db.redis.hget(live, JOB_FIELD.firstFailedAt), '1000', 'the first failure stays noted');
    // The note follows BullMQ's failed event: with a short backoff the retry can complete, and BullMQ delete the job, first.
    const gone = jobKey(location, 'k~gone');
    assert.equal(await scripts.noteFirstFailure(gone, 1_000), 0);
    assert.equal(await db.redis.exists(gone), 0, 'no hash holding only the note is left behind');
  });
});
