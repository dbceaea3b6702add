// The BullMQ layout test: real jobs added by the installed bullmq must sit where bullmq-internals.ts says, or it names what changed.
//
// Conveyor's Lua scripts (queue-scripts.ts) read and write BullMQ's keys, job fields and scores behind
// its API. A BullMQ release that renames or rescores any of them would not break a single call; it
// would silently miscount depth, lose a priority raise or leave a request waiting. This file is the
// tripwire: run it before moving the `bullmq` pin in shared/package.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { gate, queueSettings, waitFor } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { type Job, type JobsOptions, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  BULLMQ_KEY,
  BULLMQ_VERSION,
  bullmqKey,
  DELAYED_MARKER_MEMBER,
  deduplicationKey,
  deduplicationNextKey,
  delayedMarkerScore,
  delayedScore,
  JOB_FIELD,
  jobKey,
  jobLockKey,
  NEXT_JOB_FIELD,
  OPTS_PRIORITY,
  prioritizedScore,
  storedJobOptions,
} from './bullmq-internals.ts';
import { queueScripts } from './queue-scripts.ts';
import { type QueueLocation, queueLocation } from './redis-keys.ts';

const installed: string = createRequire(import.meta.url)('bullmq/package.json').version;

/** Asserts one fact of the layout; the message says it is BullMQ that moved, and where to look. */
function layout(actual: unknown, expected: unknown, fact: string): void {
  assert.deepEqual(
    actual,
    expected,
    `BullMQ's layout changed: ${fact}. bullmq-internals.ts describes bullmq ${BULLMQ_VERSION}; installed is ${installed}. ` +
      'Update bullmq-internals.ts (and the scripts in queue-scripts.ts) to the new layout, or keep the pinned version.',
  );
}

let server: RedisServer;
let redis: Redis;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
});
after(async () => {
  for (const close of closers.reverse()) await close();
  redis.disconnect();
  await server.close();
});

/** A BullMQ queue of a fresh controller, opened the way ReconcileQueue opens it. */
function freshQueue(): { location: QueueLocation; queue: Queue } {
  const settings = queueSettings(server.url);
  const location = queueLocation(settings.redis.prefix, settings.controller);
  const queue = new Queue(location.name, { connection: redis, prefix: location.prefix });
  closers.push(() => queue.close());
  return { location, queue };
}

function startWorker(location: QueueLocation, processor: (job: Job) => Promise<void>): Worker {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  const worker = new Worker(location.name, processor, { connection, prefix: location.prefix });
  closers.push(async () => {
    await worker.close(true);
    connection.disconnect();
  });
  return worker;
}

/** What ReconcileQueue passes for an event: keep the latest request while running, pull a delayed job forward. */
const eventDeduplication = (id: string): NonNullable<JobsOptions['deduplication']> => ({ id, keepLastIfActive: true, reschedule: true });

describe('BullMQ layout test (bullmq-internals.ts against the installed bullmq)', () => {
  it('runs on the bullmq version bullmq-internals.ts is written for, which shared/package.json pins exactly', () => {
    const pinned = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).dependencies.bullmq;
    assert.equal(
      pinned,
      BULLMQ_VERSION,
      `shared/package.json must pin bullmq to exactly ${BULLMQ_VERSION}, the version bullmq-internals.ts describes`,
    );
    assert.equal(installed, BULLMQ_VERSION, `installed bullmq ${installed} is not the pinned ${BULLMQ_VERSION}: run npm ci`);
  });

  describe('when jobs are added with priorities', () => {
    it('keeps them in the job hash and in prioritized, scored priority × 2^32 + the pc counter', async () => {
      const { location, queue } = freshQueue();
      await queue.add('event', { n: 1 }, { jobId: 'a~1', priority: 3 });
      await queue.add('event', { n: 2 }, { jobId: 'b~1', priority: 3 });
      await queue.add('manual', { n: 3 }, { jobId: 'c~1', priority: 1 });

      const [name, data, priority, opts] = await redis.hmget(
        jobKey(location, 'c~1'),
        JOB_FIELD.name,
        JOB_FIELD.data,
        JOB_FIELD.priority,
        JOB_FIELD.opts,
      );
      layout([name, data, priority], ['manual', '{"n":3}', '1'], `job hash ${jobKey(location, 'c~1')} fields name, data, priority`);
      layout(JSON.parse(opts ?? '{}')[OPTS_PRIORITY], 1, `the job's opts JSON keeps the priority under "${OPTS_PRIORITY}"`);

      const counter = bullmqKey(location, BULLMQ_KEY.priorityCounter);
      layout(await redis.get(counter), '3', `${counter} counts prioritized adds`);
      const prioritized = bullmqKey(location, BULLMQ_KEY.prioritized);
      const scores = await Promise.all(['a~1', 'b~1', 'c~1'].map(async (id) => Number(await redis.zscore(prioritized, id))));
      layout(
        scores,
        [prioritizedScore(3, 1), prioritizedScore(3, 2), prioritizedScore(1, 3)],
        `${prioritized} scores jobs priority × 2^32 + counter`,
      );
    });

    it('puts a job without priority in wait, and leaves it in wait or paused while the queue is paused', async () => {
      const { location, queue } = freshQueue();
      await queue.add('event', {}, { jobId: 'w~1' });
      const wait = bullmqKey(location, BULLMQ_KEY.wait);
      layout(await redis.lrange(wait, 0, -1), ['w~1'], `${wait} lists jobs without priority`);
      await queue.pause();
      await queue.add('event', {}, { jobId: 'w~2' });
      const paused = bullmqKey(location, BULLMQ_KEY.paused);
      const held = [...(await redis.lrange(wait, 0, -1)), ...(await redis.lrange(paused, 0, -1))].sort();
      layout(held, ['w~1', 'w~2'], `a paused queue keeps its waiting jobs in ${wait} or ${paused}`);
    });
  });

  describe('when jobs are delayed', () => {
    it('scores them dueAt × 0x1000 + n in delayed, keeps the delay in the job hash, and marks the due time', async () => {
      const { location, queue } = freshQueue();
      const timestamp = Date.now() + 3_600_000;
      await queue.add('event', {}, { jobId: 'd~1', delay: 60_000, timestamp });
      await queue.add('event', {}, { jobId: 'd~2', delay: 60_000, timestamp });
      const dueAt = timestamp + 60_000;

      const delayed = bullmqKey(location, BULLMQ_KEY.delayed);
      const scores = [Number(await redis.zscore(delayed, 'd~1')), Number(await redis.zscore(delayed, 'd~2'))];
      layout(scores, [delayedScore(dueAt, 0), delayedScore(dueAt, 1)], `${delayed} scores jobs dueAt × 0x1000 + n`);
      layout(await redis.hget(jobKey(location, 'd~1'), JOB_FIELD.delay), '60000', `job hash field "${JOB_FIELD.delay}" holds the delay`);

      const marker = bullmqKey(location, BULLMQ_KEY.marker);
      const markerScore = await redis.zscore(marker, DELAYED_MARKER_MEMBER);
      layout(
        Number(markerScore),
        delayedMarkerScore(delayedScore(dueAt, 0)),
        `${marker} member "${DELAYED_MARKER_MEMBER}" is scored with the next due time (lowest delayed score / 0x1000)`,
      );
    });
  });

  describe('when a request for a deduplicated job arrives while it runs', () => {
    it('names the running job in de:<id>, lists it in active under its lock, and keeps the request in dn:<id>', async () => {
      const { location, queue } = freshQueue();
      const hold = gate();
      let running = '';
      startWorker(location, async (job) => {
        running = job.id ?? '';
        await hold.promise;
      });
      await queue.add('event', { n: 1 }, { jobId: 'k~1', priority: 1, deduplication: eventDeduplication('k') });
      const dedup = deduplicationKey(location, 'k');
      layout(await redis.get(dedup), 'k~1', `${dedup} holds the id of the job that has the deduplication id's place`);
      await waitFor('k~1 running', () => running === 'k~1');

      const active = bullmqKey(location, BULLMQ_KEY.active);
      layout(await redis.lrange(active, 0, -1), ['k~1'], `${active} lists running jobs`);
      layout(await redis.exists(jobLockKey(location, 'k~1')), 1, `a running job's lock is ${jobLockKey(location, 'k~1')}`);
      layout(
        await redis.hget(jobKey(location, 'k~1'), JOB_FIELD.attemptsStarted),
        '1',
        `job hash field "${JOB_FIELD.attemptsStarted}" counts the moves to active`,
      );

      await queue.add('manual', { n: 2 }, { jobId: 'k~2', priority: 2, deduplication: eventDeduplication('k') });
      layout(await redis.get(dedup), 'k~1', `${dedup} still names the running job after a request was kept`);
      const next = deduplicationNextKey(location, 'k');
      const [name, data, opts] = await redis.hmget(next, NEXT_JOB_FIELD.name, NEXT_JOB_FIELD.data, NEXT_JOB_FIELD.opts);
      layout([name, data], ['manual', '{"n":2}'], `${next} keeps the latest request's name and data`);
      layout(JSON.parse(opts ?? '{}')[OPTS_PRIORITY], 2, `${next} keeps the latest request's opts JSON with "${OPTS_PRIORITY}"`);

      hold.open();
      await waitFor('the kept request ran as its own job once the running one finished', () => running === 'k~2');
    });
  });

  describe('when a job fails for good', () => {
    it('keeps its id in failed', async () => {
      const { location, queue } = freshQueue();
      startWorker(location, async () => {
        throw new UnrecoverableError('bad spec');
      });
      await queue.add('event', {}, { jobId: 'f~1' });
      await waitFor('f~1 failed', async () => (await queue.getJobState('f~1')) === 'failed');
      const failed = bullmqKey(location, BULLMQ_KEY.failed);
      layout(await redis.zrange(failed, '0', '-1'), ['f~1'], `${failed} is the sorted set of failed job ids`);
    });
  });

  describe('when Conveyor adds resync requests to the backlog with its own script (addToBacklog)', () => {
    /** Everything one queue holds, as it would compare with another queue's: key types, job hashes (opts parsed), scores, events without their ids. */
    async function contents(location: QueueLocation): Promise<Record<string, unknown>> {
      const prefix = bullmqKey(location, '');
      const held: Record<string, unknown> = {};
      for (const key of (await redis.keys(`${prefix}*`)).sort()) {
        const name = key.slice(prefix.length);
        const type = await redis.type(key);
        if (type === 'hash') {
          const hash = await redis.hgetall(key);
          held[name] = { ...hash, ...(hash.opts === undefined ? {} : { opts: JSON.parse(hash.opts) }) };
        } else if (type === 'zset') held[name] = await redis.zrange(key, '0', '-1', 'WITHSCORES');
        else if (type === 'stream') held[name] = (await redis.xrange(key, '-', '+')).map(([, fields]) => fields);
        else held[name] = await redis.get(key);
      }
      return held;
    }

    /** The options ReconcileQueue gives a resync request: delayed into the backlog, deduplicated by the key. */
    const resyncOptions = (id: string, jobId: string): JobsOptions & { jobId: string } => ({
      attempts: 15,
      backoff: { type: 'conveyor-exponential' },
      removeOnComplete: true,
      jobId,
      priority: 3,
      deduplication: { id },
      delay: 365 * 24 * 3_600_000,
    });

    it('writes what BullMQ’s add of the same delayed, deduplicated jobs writes, merges as it does, and sets no marker', async () => {
      const bullmq = freshQueue();
      const ours = freshQueue();
      const scripts = queueScripts(redis);
      const timestamp = Date.now();
      // a new key, a second new key, the first key again (merges), and a key whose de: entry names a job that is gone (stale)
      const requests = [
        ['k1', 'k1~a'],
        ['k2', 'k2~a'],
        ['k1', 'k1~b'],
        ['k3', 'k3~a'],
      ] as const;
      for (const location of [bullmq.location, ours.location]) await redis.set(deduplicationKey(location, 'k3'), 'k3~gone');

      const byBullmq: string[] = [];
      for (const [id, jobId] of requests) {
        const job = await bullmq.queue.add('resync', { id }, { ...resyncOptions(id, jobId), timestamp });
        byBullmq.push(job.id as string);
      }
      const keys = [BULLMQ_KEY.meta, BULLMQ_KEY.id, BULLMQ_KEY.delayed, BULLMQ_KEY.events].map((type) => bullmqKey(ours.location, type));
      const args = [bullmqKey(ours.location, ''), 'resync', String(timestamp), String(365 * 24 * 3_600_000), '3'];
      // BullMQ's jobs carry the fixed timestamp in their options too (ReconcileQueue's do not: BullMQ stamps them)
      for (const [id, jobId] of requests)
        args.push(jobId, id, JSON.stringify({ id }), storedJobOptions({ ...resyncOptions(id, jobId), timestamp }));
      const byScript = await scripts.addToBacklog(keys, args);

      layout(byScript, byBullmq, 'the id of the job that holds each request’s place');
      assert.deepEqual(byScript, ['k1~a', 'k2~a', 'k1~a', 'k3~a'], 'the second request for k1 merged; the stale k3 entry was taken over');
      const [expected, actual] = [await contents(bullmq.location), await contents(ours.location)];
      const marker = BULLMQ_KEY.marker;
      assert.ok(expected[marker] !== undefined, 'BullMQ’s add sets the delay marker');
      assert.equal(actual[marker], undefined, 'the backlog add sets no marker: no blocked worker wakes for a job due in a year');
      delete expected[marker];
      delete expected.meta; // BullMQ's queue also records its version there; the events cap is compared below
      layout(
        actual,
        { ...expected, meta: actual.meta },
        'job hashes, de: entries, delayed scores, id counter and events of a delayed deduplicated add',
      );
      layout(await redis.hget(bullmqKey(ours.location, BULLMQ_KEY.meta), 'opts.maxLenEvents'), '10000', 'meta caps the events stream');
    });
  });
});
