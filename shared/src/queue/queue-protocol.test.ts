// Integration tests on a real Redis for the protocol parts queue-outcomes.test.ts leaves out: throttling, limiter, backoff
// timing, bad payloads, epoch loss, depth by state and the priority of reasons.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { gate, queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { Queue } from 'bullmq';
import { systemClock } from '../clock.ts';
import { InvalidKeyError, TerminalError, ThrottledError } from '../errors.ts';
import { keyToJobId } from '../object-key.ts';
import { done, type Outcome, requeueAfter } from '../outcome.ts';
import { type QueueWorker, type RequestContext, startQueueWorker } from './queue-worker.ts';
import { BACKOFF_STRATEGY, type QueueSettings, ReconcileQueue } from './reconcile-queue.ts';
import { queueLocation } from './redis-keys.ts';
import { type EnqueueRequest, encodeRequest, encodeRequestV1, REASON_PRIORITY } from './request-payload.ts';

const db = privateRedis();

interface Run extends RequestContext {
  startedAt: number;
}

/** A queue, workers on it that record every reconcile (with its start time), and teardown. */
function harness(processor: (request: RequestContext, runs: Run[]) => Promise<Outcome>, queueConfig = {}) {
  const settings = queueSettings(db.server.url, queueConfig);
  const queue = new ReconcileQueue(settings);
  const runs: Run[] = [];
  const workers: QueueWorker[] = [];
  const start = (concurrency = 2) => {
    workers.push(
      startQueueWorker({
        ...settings,
        concurrency,
        processor: async (request) => {
          runs.push({ ...request, startedAt: Date.now() });
          return await processor(request, runs);
        },
      }),
    );
  };
  const names = () => runs.map((r) => r.key.name);
  return {
    settings,
    queue,
    runs,
    names,
    start,
    async close() {
      await Promise.all(workers.map((w) => w.close(1_000)));
      await queue.close();
    },
  };
}

/** BullMQ directly, for what ReconcileQueue would never write (bad payloads, unprioritized jobs). */
function rawQueue(settings: QueueSettings): Queue {
  const location = queueLocation(settings.redis.prefix, settings.controller);
  return new Queue(location.name, { connection: db.redis, prefix: location.prefix });
}

describe('outcome mapping on a real Redis', () => {
  it('throttled pauses the whole queue (every worker, every key) for retryAfter and uses no attempt', async () => {
    let throttledAt = 0;
    const h = harness(async (request, runs) => {
      if (request.key.name === 'a' && runs.filter((r) => r.key.name === 'a').length === 1) {
        throttledAt = Date.now();
        throw new ThrottledError('429 from the API server', 1_500);
      }
      return done;
    });
    try {
      h.start(2);
      h.start(2);
      await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
      await waitFor('a throttled', () => throttledAt > 0);
      // The pause is set before a's job goes back to the queue; only then is b's start a fair test of it.
      await waitFor('a back in the queue', async () => {
        const depth = await h.queue.getDepth();
        return (depth.active === 0 && depth.waiting + depth.prioritized === 1) || h.runs.length > 1;
      });
      await h.queue.enqueue({ key: widgetKey('b'), reason: 'event' });
      await waitFor('a and b reconciled after the pause', () => h.runs.length === 3);
      const [, second, third] = h.runs;
      for (const run of [second, third]) {
        // A lower bound only: a loaded machine can make the pause look longer, never shorter.
        assert.ok((run?.startedAt ?? 0) >= throttledAt + 1_400, `${run?.key.name} waited out the pause`);
      }
      const retried = h.runs.filter((r) => r.key.name === 'a');
      assert.deepEqual(
        retried.map((r) => r.attempt),
        [1, 1],
        'the throttled run used no attempt',
      );
      assert.equal(retried[0]?.jobId, retried[1]?.jobId, 'the same job ran again');
    } finally {
      await h.close();
    }
  });

  it('retries an error after the per-key backoff, doubling each time', async () => {
    const h = harness(
      async (_request, runs) => {
        if (runs.length < 3) throw new Error('API said 500');
        return done;
      },
      { backoff: { base: '300ms', max: '10s', jitter: 0 }, attempts: 5 },
    );
    try {
      h.start(1);
      await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
      await waitFor('succeeded on the third attempt', async () => h.runs.length === 3 && (await h.queue.getDepth()).active === 0);
      const [first, second, third] = h.runs.map((r) => r.startedAt);
      assert.deepEqual(
        h.runs.map((r) => r.attempt),
        [1, 2, 3],
      );
      assert.ok((second ?? 0) - (first ?? 0) >= 280, 'first retry after ~300 ms');
      assert.ok((third ?? 0) - (second ?? 0) >= 580, 'second retry after ~600 ms');
      assert.equal((await h.queue.getDepth()).parked, 0);
    } finally {
      await h.close();
    }
  });

  it('the queue-wide limiter from config caps how many reconciles start per window', async () => {
    const h = harness(async () => done, { limiter: { max: 2, duration: '1s' } });
    try {
      h.start(4);
      await h.queue.enqueueBatch(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({ key: widgetKey(name), reason: 'event' as const })));
      await waitFor('all six reconciled', () => h.runs.length === 6);
      const starts = h.runs.map((r) => r.startedAt).sort((x, y) => x - y);
      // At most 2 per second: the 5th start falls in the third window, two windows after the first.
      assert.ok((starts[4] ?? 0) - (starts[0] ?? 0) >= 1_000, `starts ${starts.map((s) => s - (starts[0] ?? 0)).join(', ')}`);
    } finally {
      await h.close();
    }
  });
});

describe('payloads a worker cannot read', () => {
  it('parks a job with an unknown version or a malformed payload with a clear reason, and keeps working', async () => {
    const h = harness(async () => done);
    const raw = rawQueue(h.settings);
    try {
      h.start(1);
      const good = encodeRequestV1({ key: widgetKey('x'), reason: 'event' }, Date.now());
      await raw.add('event', { ...good, v: 3 }, { jobId: `${keyToJobId(widgetKey('v3'))}~a` });
      await raw.add('event', { ...good, key: 'not a key' }, { jobId: `${keyToJobId(widgetKey('bad'))}~b` });
      await h.queue.enqueue({ key: widgetKey('ok'), reason: 'event' });
      await waitFor('both bad jobs parked', async () => (await h.queue.getDepth()).parked === 2);
      await waitFor('the good request reconciled', () => h.names().includes('ok'));
      assert.deepEqual(h.names(), ['ok'], 'no processor ran for the bad payloads');
      const parked = (await h.queue.listParked()).sort((a, b) => a.key.name.localeCompare(b.key.name));
      assert.deepEqual(
        parked.map((p) => [p.key.name, p.reason, p.attempts]),
        [
          ['bad', 'unknown', 1],
          ['v3', 'unknown', 1],
        ],
      );
      assert.match(parked[0]?.error ?? '', /^PAYLOAD_INVALID: payload v1 is malformed: key: /);
      assert.match(parked[1]?.error ?? '', /^PAYLOAD_INVALID: payload version 3 is not supported; this worker reads v1 and v2$/);
    } finally {
      await raw.close();
      await h.close();
    }
  });
});

describe('a key no object can have', () => {
  it('is refused by enqueue and enqueueBatch, and nothing is written', async () => {
    const settings = queueSettings(db.server.url);
    const queue = new ReconcileQueue(settings);
    try {
      const bad = { key: widgetKey('a/b'), reason: 'event' as const };
      await assert.rejects(
        queue.enqueue(bad),
        (error: unknown) => error instanceof InvalidKeyError && /may not contain "\/"/.test(error.message),
      );
      await assert.rejects(queue.enqueueBatch([{ key: widgetKey('fine'), reason: 'event' }, bad]), InvalidKeyError);
      const depth = await queue.getDepth();
      assert.equal(depth.waiting + depth.prioritized + depth.delayedLater, 0);
    } finally {
      await queue.close();
    }
  });
});

describe('requests an older watcher queued (payload v1) after an upgrade', () => {
  /** A job exactly as ReconcileQueue wrote it before payload v2: the key in the payload, `removeOnFail: false` in the options. */
  async function addV1(raw: Queue, request: EnqueueRequest, eventAt?: number): Promise<void> {
    const id = keyToJobId(request.key);
    const data = encodeRequestV1({ ...request, ...(eventAt === undefined ? {} : { eventAt }) }, Date.now());
    await raw.add(request.reason, data, {
      attempts: 3,
      backoff: { type: BACKOFF_STRATEGY },
      removeOnComplete: true,
      removeOnFail: false,
      jobId: `${id}~v1${request.key.name}`,
      priority: REASON_PRIORITY[request.reason],
      deduplication: request.reason === 'resync' ? { id } : { id, keepLastIfActive: true, reschedule: true },
    });
  }

  it('runs them with their reason, trace and event time, merges new requests into them, and lists and retries them once parked', async () => {
    let fail = true;
    const h = harness(async (request) => {
      if (request.key.name === 'old-bad' && fail) throw new TerminalError('bad spec');
      return done;
    });
    const raw = rawQueue(h.settings);
    try {
      const eventAt = Date.now() - 5_000;
      await addV1(
        raw,
        { key: widgetKey('old-event'), reason: 'event', trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        eventAt,
      );
      await addV1(raw, { key: widgetKey('old-merge'), reason: 'manual' });
      await addV1(raw, { key: widgetKey('old-bad'), reason: 'event' });
      // The new code's request for a key an old job holds merges into that job (same deduplication id) and lends it its priority.
      await h.queue.enqueue({ key: widgetKey('old-merge'), reason: 'event' });
      assert.deepEqual((await h.queue.getDepth()).lanes, { event: 3, manual: 0, resync: 0 });
      h.start(1);
      await waitFor('the old requests ran', async () => (await h.queue.getDepth()).parked === 1 && h.runs.length === 3);
      const old = h.runs.find((run) => run.key.name === 'old-event');
      assert.deepEqual(
        { reason: old?.reason, trace: old?.trace, eventAt: old?.eventAt },
        { reason: 'event', trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', eventAt },
      );
      assert.deepEqual(
        h.runs.filter((run) => run.key.name === 'old-merge').map((run) => run.reason),
        ['manual'],
        'one reconcile for the old job and the request merged into it',
      );
      // `conveyor parked list` reads the old payload; a retry re-enqueues it in the new format, and it runs.
      const [parked] = await h.queue.listParked();
      assert.deepEqual([parked?.key.name, parked?.reason, parked?.error], ['old-bad', 'event', 'TERMINAL: bad spec']);
      fail = false;
      assert.equal(await h.queue.retryParked(), 1);
      await waitFor('the retried request ran', () => h.runs.length === 4);
      assert.deepEqual([h.runs[3]?.key.name, h.runs[3]?.reason], ['old-bad', 'event']);
    } finally {
      await raw.close();
      await h.close();
    }
  });
});

describe('parking and retryParked', () => {
  it('after a retry of all parked requests nothing is parked and every key reconciled once more', async () => {
    let fail = true;
    const h = harness(async () => {
      if (fail) throw new TerminalError('bad spec');
      return done;
    });
    try {
      h.start(2);
      await h.queue.enqueueBatch(['a', 'b', 'c'].map((name) => ({ key: widgetKey(name), reason: 'resync' as const })));
      await waitFor('three parked', async () => (await h.queue.getDepth()).parked === 3);
      const parked = await h.queue.listParked();
      assert.deepEqual(parked.map((p) => p.reason).sort(), ['resync', 'resync', 'resync']);
      assert.ok(parked.every((p) => p.error === 'TERMINAL: bad spec' && p.parkedAt > 0));
      fail = false;
      assert.equal(await h.queue.retryParked(widgetKey('nobody')), 0, 'a key with nothing parked retries nothing');
      assert.equal(await h.queue.retryParked(), 3);
      await waitFor('all reconciled again', () => h.runs.length === 6);
      await waitFor('nothing parked', async () => (await h.queue.getDepth()).parked === 0);
      assert.deepEqual(h.names().slice(3).sort(), ['a', 'b', 'c']);
    } finally {
      await h.close();
    }
  });
});

describe('epoch', () => {
  it('notices a FLUSHALL once per ReconcileQueue, also in a replica that did not re-arm the key itself', async () => {
    const settings = queueSettings(db.server.url);
    const first = new ReconcileQueue(settings);
    const second = new ReconcileQueue(settings);
    try {
      assert.equal(await first.checkEpoch(), false, 'first call arms the epoch');
      assert.equal(await second.checkEpoch(), false);
      assert.equal(await first.checkEpoch(), false, 'nothing lost yet');
      await db.redis.flushall();
      assert.equal(await first.checkEpoch(), true, 'the flush is noticed');
      assert.equal(await first.checkEpoch(), false, 'and reported once');
      assert.equal(await second.checkEpoch(), true, 'a replica whose epoch changed under it notices too');
      assert.equal(await second.checkEpoch(), false);
    } finally {
      await first.close();
      await second.close();
    }
  });
});

describe('epoch after a restart', () => {
  it('notices a Redis restart without persistence once the connection is back', async () => {
    const settings = queueSettings(db.server.url);
    const queue = new ReconcileQueue(settings);
    try {
      await queue.enqueue({ key: widgetKey('a'), reason: 'event' });
      assert.equal(await queue.checkEpoch(), false);
      await db.server.restart();
      await waitFor('the epoch loss is noticed', async () => {
        try {
          return await queue.checkEpoch();
        } catch {
          return false;
        }
      });
      assert.equal((await queue.getDepth()).prioritized, 0, 'the request was lost with the data, which is what the relist answers');
      assert.equal(await queue.checkEpoch(), false);
    } finally {
      await queue.close();
    }
  });
});

describe('getDepth', () => {
  it('counts requests by state (waiting, prioritized, delayed due and later, active, parked) and by lane', async () => {
    const hold = gate();
    const h = harness(async (request) => {
      switch (request.key.name) {
        case 'parked':
          throw new TerminalError('bad spec');
        case 'in-1h':
          return requeueAfter('1h');
        case 'in-3h':
          return requeueAfter('3h');
        case 'active':
          await hold.promise;
          return done;
        default:
          return done;
      }
    });
    const raw = rawQueue(h.settings);
    // Reads depth as if two hours had passed: the 1 h requeue is due, the 3 h one is not.
    const later = new ReconcileQueue(h.settings, { clock: { ...systemClock, now: () => Date.now() + 2 * 3_600_000 } });
    try {
      h.start(1);
      for (const name of ['parked', 'in-1h', 'in-3h', 'active']) await h.queue.enqueue({ key: widgetKey(name), reason: 'event' });
      await waitFor('the worker holds "active"', () => h.names().includes('active'));
      await h.queue.enqueueBatch([
        { key: widgetKey('p1'), reason: 'event' },
        { key: widgetKey('p2'), reason: 'resync' },
      ]);
      // ReconcileQueue gives every request a priority; a job without one (another producer) sits in the wait list.
      await raw.add('event', encodeRequest({ reason: 'event' }, Date.now()), {
        jobId: `${keyToJobId(widgetKey('w'))}~w`,
      });
      // p2's resync waits in the backlog (counted as prioritized and in the resync lane, never as a later delay):
      // the only slot runs an event, so the worker has no room to admit it.
      const lanes = { event: 2, manual: 0, resync: 1 };
      const queued = { waiting: 1, prioritized: 2, active: 1, parked: 1, lanes, resyncBacklog: 1 };
      assert.deepEqual(await later.getDepth(), { ...queued, delayedDue: 1, delayedLater: 1 });
      assert.deepEqual(await h.queue.getDepth(), { ...queued, delayedDue: 0, delayedLater: 2 });
      hold.open();
      await waitFor('the rest drained', async () => {
        const d = await h.queue.getDepth();
        return d.waiting + d.prioritized + d.active === 0;
      });
      assert.deepEqual(await h.queue.getDepth(), {
        waiting: 0,
        prioritized: 0,
        delayedDue: 0,
        delayedLater: 2,
        active: 0,
        parked: 1,
        lanes: { event: 0, manual: 0, resync: 0 },
        resyncBacklog: 0,
      });
    } finally {
      await raw.close();
      await later.close();
      await h.close();
    }
  });
});

describe('priority of reasons', () => {
  const resync = (n: number) => Array.from({ length: n }, (_, i) => ({ key: widgetKey(`r${i}`), reason: 'resync' as const }));

  it('keeps a resync enqueued on its own in the backlog, merges a second one for its key, and runs it once after a fresh event', async () => {
    const h = harness(async () => done);
    try {
      await h.queue.enqueue({ key: widgetKey('r'), reason: 'resync' });
      await h.queue.enqueue({ key: widgetKey('r'), reason: 'resync' });
      await h.queue.enqueue({ key: widgetKey('fresh'), reason: 'event' });
      const depth = await h.queue.getDepth();
      assert.deepEqual(
        [depth.resyncBacklog, depth.lanes],
        [1, { event: 1, manual: 0, resync: 1 }],
        'one resync job for the key, in the backlog',
      );
      h.start(1);
      await waitFor('the queue drained', async () => {
        const d = await h.queue.getDepth();
        return h.runs.length >= 2 && d.waiting + d.prioritized + d.active === 0;
      });
      assert.deepEqual(h.names(), ['fresh', 'r']);
    } finally {
      await h.close();
    }
  });

  it('runs a fresh event, then a manual request, before a resync of 10,000 keys enqueued earlier', async () => {
    const h = harness(async () => done);
    try {
      await h.queue.enqueueBatch(resync(10_000));
      await h.queue.enqueue({ key: widgetKey('manual'), reason: 'manual' });
      await h.queue.enqueue({ key: widgetKey('fresh'), reason: 'event' });
      // An event for a key whose resync is waiting merges into it and lends it its priority.
      await h.queue.enqueue({ key: widgetKey('r9999'), reason: 'event' });
      // The same through a batch (a relist that found a changed object).
      await h.queue.enqueueBatch([{ key: widgetKey('r5000'), reason: 'event' }]);
      h.start(1);
      await waitFor('the first few reconciles', () => h.runs.length >= 5);
      assert.deepEqual(h.names().slice(0, 4), ['fresh', 'r9999', 'r5000', 'manual']);
    } finally {
      await h.close();
    }
  });

  it('a fresh event that arrives during a running resync of 10,000 keys starts before most of them', async () => {
    const h = harness(async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return done;
    });
    try {
      h.start(2);
      await h.queue.enqueueBatch(resync(10_000));
      await waitFor('the resync is under way', () => h.runs.length > 0);
      await h.queue.enqueue({ key: widgetKey('fresh'), reason: 'event' });
      const before = h.runs.length;
      await waitFor('the fresh event reconciled', () => h.names().includes('fresh'));
      const index = h.names().indexOf('fresh');
      assert.ok(index < 5_000, `the fresh event ran as reconcile #${index} of 10,001, behind fewer than half of the resync`);
      // Once enqueued it is the next job any slot fetches: behind at most the fetches already under way.
      assert.ok(index - before < 20, `ran ${index - before} reconciles after it was enqueued`);
    } finally {
      await h.close();
    }
  });
});
