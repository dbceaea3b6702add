// Integration tests on a real Redis for the batched fill of empty slots (filling-worker.ts): every request still runs once,
// nothing is left locked, and a fetched job the worker does not start goes back to the queue at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { privateRedis } from '@conveyor/test/support/private-redis';
import { queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../logger.ts';
import { done } from '../outcome.ts';
import { BULLMQ_KEY, bullmqKey } from './bullmq-internals.ts';
import { FillingWorker } from './filling-worker.ts';
import { queueScripts, unstarter } from './queue-scripts.ts';
import { type RequestContext, startQueueWorker } from './queue-worker.ts';
import { type QueueSettings, ReconcileQueue } from './reconcile-queue.ts';
import { queueLocation } from './redis-keys.ts';

const db = privateRedis();

const requests = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: widgetKey(`${prefix}-${i}`), reason: 'event' as const }));

/** What a drained queue must not hold: a job still active, or a lock on one. */
async function leftovers(settings: QueueSettings): Promise<{ active: number; locks: string[] }> {
  const location = queueLocation(settings.redis.prefix, settings.controller);
  const active = await db.redis.llen(bullmqKey(location, BULLMQ_KEY.active));
  const locks = await db.redis.keys(`${location.prefix}:${location.name}:*:lock`);
  return { active, locks };
}

/**
 * Eight waiting requests and a filling worker at concurrency 8 with locks far longer than any wait in these tests (a job
 * left locked would only come back after minutes), whose `afterFetch` runs after each of its fetches; records the id
 * and the BullMQ start count of each job it runs.
 */
async function eightJobsAndAWorker(afterFetch: (worker: FillingWorker) => void) {
  const settings = queueSettings(db.server.url, { lockDuration: '5m', stalledInterval: '5m' });
  const location = queueLocation(settings.redis.prefix, settings.controller);
  const queue = new ReconcileQueue(settings);
  await queue.enqueueBatch(requests('w', 8));
  const connection = new Redis(db.server.url, { maxRetriesPerRequest: null });
  const logger = createLogger({ level: 'silent' });
  const ran: string[] = [];
  const starts: number[] = [];
  class HookedWorker extends FillingWorker {
    protected override async moveToActive(token: string, name?: string): Promise<Job> {
      const job = await super.moveToActive(token, name);
      afterFetch(this);
      return job;
    }
  }
  const worker = new HookedWorker(
    location.name,
    async (job: Job) => {
      ran.push(job.id ?? '');
      starts.push(job.attemptsStarted);
    },
    { connection, prefix: location.prefix, concurrency: 8, lockDuration: 300_000, stalledInterval: 300_000 },
    { connection, location, logger, unstart: unstarter(queueScripts(connection), location, logger) },
  );
  return {
    settings,
    queue,
    ran,
    starts,
    async close() {
      await worker.close();
      connection.disconnect();
      await queue.close();
    },
  };
}

describe('filling empty slots in one batch', () => {
  it('a worker starting on a backlog larger than its slots runs every request once and leaves nothing locked', async () => {
    const settings = queueSettings(db.server.url);
    const queue = new ReconcileQueue(settings);
    const runs: RequestContext[] = [];
    await queue.enqueueBatch(requests('w', 35));
    const worker = startQueueWorker({
      ...settings,
      concurrency: 10,
      processor: async (request) => {
        runs.push(request);
        await new Promise((resolve) => setTimeout(resolve, 5));
        return done;
      },
    });
    try {
      await waitFor('35 reconciles', () => runs.length >= 35);
      await waitFor('the queue drained', async () => (await queue.getDepth()).active === 0);
      const names = runs.map((r) => r.key.name).sort();
      assert.deepEqual(names, [...new Set(names)], 'no request ran twice');
      assert.equal(names.length, 35);
      assert.deepEqual(await leftovers(settings), { active: 0, locks: [] });
    } finally {
      await worker.close(1_000);
      await queue.close();
    }
  });

  it('an idle worker woken by fewer requests than slots runs them, and then the next burst', async () => {
    const settings = queueSettings(db.server.url);
    const queue = new ReconcileQueue(settings);
    const runs: string[] = [];
    const worker = startQueueWorker({
      ...settings,
      concurrency: 10,
      processor: async (request) => {
        runs.push(request.key.name);
        return done;
      },
    });
    try {
      await queue.enqueueBatch(requests('a', 3));
      await waitFor('the first 3 reconciles', () => runs.length >= 3);
      await queue.enqueueBatch(requests('b', 25));
      await waitFor('28 reconciles', () => runs.length >= 28);
      await waitFor('the queue drained', async () => (await queue.getDepth()).active === 0);
      assert.equal(new Set(runs).size, 28, 'no request ran twice');
      assert.deepEqual(await leftovers(settings), { active: 0, locks: [] });
    } finally {
      await worker.close(1_000);
      await queue.close();
    }
  });

  it('a batch-fetched job the worker does not start goes back to the queue at once, not after its lock expires', async () => {
    let shrunk = false;
    // Its main loop stops asking right after the first fetch of the batch (as a close, a pause or a rate limit would make it):
    // the other seven jobs were fetched and locked for it, and none starts here.
    const w = await eightJobsAndAWorker((worker) => {
      if (!shrunk) {
        shrunk = true;
        worker.concurrency = 1;
      }
    });
    try {
      await waitFor('all 8 jobs run, one at a time', () => w.ran.length >= 8, 30_000);
      assert.equal(new Set(w.ran).size, 8, 'no job ran twice');
      // The seven handed back were fetched twice but started once: each run is its job's first (RequestContext.runs).
      assert.deepEqual(w.starts, [1, 1, 1, 1, 1, 1, 1, 1], 'a job handed back unstarted counts no start');
      await waitFor('the queue drained', async () => (await w.queue.getDepth()).active === 0, 30_000);
      assert.deepEqual(await leftovers(w.settings), { active: 0, locks: [] });
    } finally {
      await w.close();
    }
  });

  it('a worker closed while a batch is in flight has every unstarted job back in the queue when close returns', async () => {
    let closing: Promise<void> | undefined;
    const w = await eightJobsAndAWorker((worker) => {
      closing ??= worker.close();
    });
    try {
      await waitFor('the worker began closing', () => closing !== undefined, 30_000);
      await closing;
      const depth = await w.queue.getDepth();
      assert.deepEqual(await leftovers(w.settings), { active: 0, locks: [] }, 'nothing left active or locked');
      assert.equal(depth.waiting + depth.prioritized + w.ran.length, 8, 'every job either ran or waits again');
    } finally {
      await w.close();
    }
  });
});
