// Lanes on a real Redis: a resync backlog never holds the slots fresh work needs, drains at full concurrency when alone, keeps one reconcile per key across lanes, and a job handed back counts no start.
//
// Reconcile durations are controlled with gates (a reconcile ends when the test opens its gate), so
// "one reconcile's duration" is a count of reconciles that had to end, never a wall-clock threshold.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gate, queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { DelayedError, Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { systemClock } from '../clock.ts';
import { createLogger } from '../logger.ts';
import { done } from '../outcome.ts';
import { jobKey, jobLockKey } from './bullmq-internals.ts';
import {
  ADMITTED_IN_TRANSIT_MS,
  FRESH_WORK_WINDOW_MS,
  handBackToBacklog,
  LaneGate,
  laneOf,
  RESYNC_HOLD_MAX,
  resyncSlots,
} from './lanes.ts';
import { queueScripts, unstarter } from './queue-scripts.ts';
import { type QueueWorker, type RequestContext, startQueueWorker } from './queue-worker.ts';
import { ReconcileQueue } from './reconcile-queue.ts';
import { queueLocation } from './redis-keys.ts';
import type { RequestReason } from './request-payload.ts';

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.close();
});

interface Start {
  name: string;
  reason: RequestReason;
  /** Reconciles running in the worker right after this one started, by what the key's name says it is. */
  resyncRunning: number;
  freshRunning: number;
}

/**
 * One worker at `concurrency` whose reconciles each wait for their own gate (opened by `release`), and
 * a record of every start with what ran beside it. Keys named `r…` are the resync's.
 */
function heldWorld(concurrency: number, resyncShare = 0.5) {
  const settings = queueSettings(server.url, { resyncShare });
  const queue = new ReconcileQueue(settings);
  const starts: Start[] = [];
  const open = new Map<string, () => void>();
  const running = { resync: 0, fresh: 0 };
  let maxResync = 0;
  let maxTotal = 0;
  const processor = async (request: RequestContext) => {
    const resync = request.key.name.startsWith('r');
    if (resync) running.resync += 1;
    else running.fresh += 1;
    maxResync = Math.max(maxResync, running.resync);
    maxTotal = Math.max(maxTotal, running.resync + running.fresh);
    starts.push({ name: request.key.name, reason: request.reason, resyncRunning: running.resync, freshRunning: running.fresh });
    const hold = gate();
    open.set(request.key.name, hold.open);
    await hold.promise;
    if (resync) running.resync -= 1;
    else running.fresh -= 1;
    return done;
  };
  let worker: QueueWorker | undefined;
  return {
    queue,
    starts,
    running,
    get maxResync() {
      return maxResync;
    },
    get maxTotal() {
      return maxTotal;
    },
    start() {
      worker = startQueueWorker({ ...settings, concurrency, processor, admitIntervalMs: 50 });
    },
    /** Ends the running reconciles of these keys. */
    release(...names: string[]) {
      for (const name of names) {
        const release = open.get(name);
        assert.ok(release !== undefined, `${name} is not running`);
        open.delete(name);
        release();
      }
    },
    /** Ends every running reconcile now and every later one as it starts. */
    releaseAll() {
      for (const name of [...open.keys()]) this.release(name);
      const interval = setInterval(() => {
        for (const name of [...open.keys()]) this.release(name);
      }, 5);
      return () => clearInterval(interval);
    },
    runningNames: () => [...open.keys()],
    async close() {
      for (const release of open.values()) release();
      await worker?.close(2_000);
      await queue.close();
    },
  };
}

const resyncOf = (n: number) => Array.from({ length: n }, (_, i) => ({ key: widgetKey(`r${i}`), reason: 'resync' as const }));

describe('lanes with reserved capacity', () => {
  it('with no fresh events, a resync drains at full concurrency', async () => {
    const w = heldWorld(4);
    try {
      await w.queue.enqueueBatch(resyncOf(40));
      w.start();
      await waitFor('every slot holds a resync reconcile', () => w.running.resync === 4);
      const stop = w.releaseAll();
      await waitFor('the resync drained', () => w.starts.length === 40);
      assert.equal(w.maxResync, 4, 'the resync used every slot: no slot is kept idle when nothing else waits');
      assert.equal(new Set(w.starts.map((s) => s.name)).size, 40, 'every key reconciled once');
      await waitFor('nothing left queued', async () => {
        const depth = await w.queue.getDepth();
        return depth.prioritized + depth.active === 0 && depth.resyncBacklog === 0;
      });
      stop();
    } finally {
      await w.close();
    }
  });

  it('a fresh event behind a resync backlog of 10,000 keys takes the first slot that frees, and more fresh work finds reserved slots', async () => {
    const w = heldWorld(4);
    try {
      await w.queue.enqueueBatch(resyncOf(10_000));
      w.start();
      await waitFor('the resync borrowed every slot', () => w.running.resync === 4);
      const depth = await w.queue.getDepth();
      assert.ok(depth.lanes.resync >= 9_996 - 4, `the resync lane holds the rest of the backlog (${JSON.stringify(depth.lanes)})`);

      await w.queue.enqueue({ key: widgetKey('fresh'), reason: 'event' });
      // One reconcile ends: its slot goes to the fresh event, ahead of the whole backlog.
      const [first] = w.runningNames();
      w.release(first as string);
      await waitFor('a reconcile started in the freed slot', () => w.starts.length === 5);
      assert.equal(w.starts[4]?.name, 'fresh', `the freed slot ran ${w.starts[4]?.name}, not the fresh event`);

      // While fresh work runs, the resync gives its borrowed slots back as they end and keeps to its share.
      for (const name of w.runningNames().filter((n) => n.startsWith('r'))) w.release(name);
      await waitFor('the resync is back to its share', () => w.running.resync === resyncSlots(4, 0.5));
      // No reconcile has to end for the next fresh request: the slot the resync left is free.
      await w.queue.enqueue({ key: widgetKey('manual'), reason: 'manual' });
      await waitFor('the manual request runs beside the first fresh event', () => w.running.fresh === 2);
      const whileFresh = w.starts.filter((s) => s.freshRunning > 0 && s.name.startsWith('r'));
      assert.ok(
        whileFresh.every((s) => s.resyncRunning <= resyncSlots(4, 0.5)),
        `a resync started beyond its share while fresh work ran: ${JSON.stringify(whileFresh)}`,
      );
      assert.deepEqual(w.running, { resync: 2, fresh: 2 }, 'the resync holds its share, fresh work the rest');
    } finally {
      await w.close();
    }
  });

  it('a key resynced and edited at once never runs twice at the same time, and its queued requests merge', async () => {
    const w = heldWorld(4);
    try {
      w.start();
      // r0 runs (as a resync); an event for r0 arrives while it runs, then another resync of it.
      await w.queue.enqueueBatch([{ key: widgetKey('r0'), reason: 'resync' }]);
      await waitFor('r0 runs', () => w.running.resync === 1);
      await w.queue.enqueue({ key: widgetKey('r0'), reason: 'event' });
      await w.queue.enqueueBatch([{ key: widgetKey('r0'), reason: 'resync' }]);
      await w.queue.enqueue({ key: widgetKey('r0'), reason: 'event' });
      assert.equal(w.starts.length, 1, 'nothing else of r0 started while it ran');
      w.release('r0');
      await waitFor('the event kept during the run started after it', () => w.starts.length === 2);
      assert.deepEqual(
        w.starts.map((s) => [s.name, s.reason]),
        [
          ['r0', 'resync'],
          ['r0', 'event'],
        ],
      );
      w.release('r0');
      await waitFor('r0 is done', async () => {
        const depth = await w.queue.getDepth();
        return depth.active + depth.prioritized === 0;
      });
      assert.equal(w.starts.length, 2, 'the resync request that came while r0 ran merged: two reconciles in all');
    } finally {
      await w.close();
    }
  });
  it('a resync drained while fresh events flow starts each of its jobs once: none is fetched without room and handed back', async () => {
    const settings = queueSettings(server.url, { resyncShare: 0.5 });
    const queue = new ReconcileQueue(settings);
    const resyncRuns: number[] = [];
    const running = { resync: 0, fresh: 0 };
    let beyondShare = 0;
    const processor = async (request: RequestContext) => {
      const resync = request.reason === 'resync';
      if (resync) {
        running.resync += 1;
        resyncRuns.push(request.runs);
        if (running.fresh > 0 && running.resync > resyncSlots(4, 0.5)) beyondShare += 1;
      } else running.fresh += 1;
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (resync) running.resync -= 1;
      else running.fresh -= 1;
      return done;
    };
    // Time stands still for the worker: fresh work flows all along, and a job admitted for it stays "on its way" until it arrives.
    const at = Date.now();
    const worker = startQueueWorker({
      ...settings,
      concurrency: 4,
      processor,
      admitIntervalMs: 50,
      clock: { ...systemClock, now: () => at },
    });
    let events = 0;
    const feed = setInterval(() => {
      events += 1;
      void queue.enqueue({ key: widgetKey(`fresh-${events}`), reason: 'event' });
    }, 3);
    try {
      await queue.enqueueBatch(resyncOf(300));
      await waitFor('the resync drained', () => resyncRuns.length >= 300, 60_000);
      assert.ok(events > 100, `fresh events flowed during the drain (${events})`);
      assert.equal(beyondShare, 0, 'a resync started beyond its share while fresh work ran');
      const again = resyncRuns.filter((runs) => runs > 1).length;
      assert.equal(again, 0, `${again} of 300 resync jobs were fetched more than once`);
    } finally {
      clearInterval(feed);
      await worker.close(2_000);
      await queue.close();
    }
  });
});

describe('a resync job handed back to the backlog', () => {
  it('uses no attempt and counts no start: its next run is its first', async () => {
    const settings = queueSettings(server.url);
    const location = queueLocation(settings.redis.prefix, settings.controller);
    const queue = new ReconcileQueue(settings);
    const connection = new Redis(server.url, { maxRetriesPerRequest: null });
    // Fetched by hand, as a worker's main loop fetches it before the lane gate turns it away.
    const worker = new Worker(location.name, null, { connection, prefix: location.prefix, autorun: false });
    try {
      await queue.enqueue({ key: widgetKey('h'), reason: 'event' });
      const job = await worker.getNextJob('the-lock');
      assert.ok(job?.id !== undefined, 'the job was fetched');
      assert.equal(job.attemptsStarted, 1, 'BullMQ counts the fetch as a start');
      const scripts = queueScripts(connection);
      assert.equal(
        await scripts.unstart(jobKey(location, job.id), jobLockKey(location, job.id), 'another-lock'),
        0,
        'only the holder of the lock takes a start back',
      );
      const unstart = unstarter(scripts, location, createLogger({ level: 'silent' }));
      await assert.rejects(
        handBackToBacklog(job, 'the-lock', Date.now, async () => {}, unstart),
        DelayedError,
      );
      const back = await Job.fromId(worker, job.id);
      assert.equal(await back?.getState(), 'delayed', 'the job waits in the backlog');
      assert.deepEqual({ started: back?.attemptsStarted, made: back?.attemptsMade }, { started: 0, made: 0 });
    } finally {
      await worker.close();
      connection.disconnect();
      await queue.close();
    }
  });
});

describe('Class: LaneGate', () => {
  const cases: { concurrency: number; share: number; slots: number }[] = [
    { concurrency: 1, share: 0.5, slots: 1 },
    { concurrency: 4, share: 0.5, slots: 2 },
    { concurrency: 20, share: 0.25, slots: 5 },
    { concurrency: 10, share: 1, slots: 10 },
    { concurrency: 3, share: 0.01, slots: 1 },
  ];
  for (const { concurrency, share, slots } of cases) {
    it(`gives a resync ${slots} of ${concurrency} slots at share ${share} while fresh work runs, and every slot when none does`, () => {
      const lanes = new LaneGate(concurrency, share);
      for (let i = 0; i < concurrency; i++) assert.equal(lanes.tryStart('resync'), true, 'borrowing: nothing else runs');
      for (let i = 0; i < concurrency; i++) lanes.finish('resync');
      assert.equal(lanes.tryStart('event'), true);
      let resync = 0;
      while (lanes.tryStart('resync')) resync += 1;
      assert.equal(resync, Math.min(slots, concurrency), 'the share while an event runs');
      assert.deepEqual(lanes.resyncRoom(), { whileOthersReady: 0, otherwise: 0 });
      assert.equal(lanes.tryStart('manual'), true, 'fresh work is never held back by the lanes');
    });
  }

  it('reads the lane from the priority BullMQ holds, which a merged event raised', () => {
    assert.equal(laneOf({ priority: 3, name: 'resync' }), 'resync');
    assert.equal(laneOf({ priority: 1, name: 'resync' }), 'event');
    assert.equal(laneOf({ priority: 2, name: 'event' }), 'manual');
    assert.equal(laneOf({ priority: 0, name: 'resync' }), 'resync');
    assert.equal(laneOf({ priority: 0, name: 'other' }), 'event');
  });
  it('keeps a resync to its share for a while after fresh work ran, then lends it every slot', () => {
    let now = 0;
    const lanes = new LaneGate(4, 0.5, () => now);
    assert.equal(lanes.tryStart('event'), true);
    lanes.finish('event');
    assert.equal(lanes.tryStart('resync'), true);
    assert.equal(lanes.tryStart('resync'), true);
    assert.equal(lanes.tryStart('resync'), false, 'an event ran a moment ago: fresh work still flows');
    assert.deepEqual(lanes.resyncRoom(), { whileOthersReady: 0, otherwise: 0 });
    now += FRESH_WORK_WINDOW_MS;
    assert.equal(lanes.tryStart('resync'), true, 'no fresh work for a while: the resync borrows');
    assert.deepEqual(lanes.resyncRoom(), { whileOthersReady: 0, otherwise: 1 });
  });

  it(`holds up to ${RESYNC_HOLD_MAX} refused resync jobs for the next slot of their lane, and sends them back when the worker closes`, async () => {
    const lanes = new LaneGate(4, 0.5);
    const heldCounts: number[] = [];
    lanes.onHeldChange = (held) => heldCounts.push(held);
    lanes.tryStart('event');
    lanes.tryStart('resync');
    lanes.tryStart('resync');
    assert.equal(lanes.tryStart('resync'), false);
    const first = lanes.hold();
    const second = lanes.hold();
    assert.ok(first !== undefined && second !== undefined);
    assert.equal(lanes.hold(), undefined, `a resync job beyond ${RESYNC_HOLD_MAX} held goes back to the backlog`);
    assert.deepEqual(lanes.resyncRoom(), { whileOthersReady: 0, otherwise: 0 }, 'held jobs count as started');
    lanes.finish('resync');
    assert.equal(await first, true, 'the first held job takes the slot its lane freed');
    assert.deepEqual(lanes.runningByLane, { event: 1, manual: 0, resync: 2 });
    lanes.releaseHeld();
    assert.equal(await second, false);
    assert.deepEqual(heldCounts, [1, 2, 1, 0], 'the worker is told how many wait, to fetch one more job for each');
  });

  it('counts the place of a resync job it admitted until the job reaches it, or goes elsewhere', () => {
    let now = 0;
    const lanes = new LaneGate(4, 0.5, () => now);
    lanes.noteAdmitted(2);
    assert.equal(lanes.admittedInTransit(), 2);
    lanes.tryStart('resync');
    assert.equal(lanes.admittedInTransit(), 1, 'one arrived');
    now += ADMITTED_IN_TRANSIT_MS + 1;
    assert.equal(lanes.admittedInTransit(), 0, 'the other went to another worker');
  });
});
