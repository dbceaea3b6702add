// B2 ingest: watch events → reconcile requests enqueued per second through the Watcher and ReconcileQueue, versus raw BullMQ addBulk on the same Redis.
import { randomBytes } from 'node:crypto';
import { type ControllerSpec, createMetricsRegistry, encodeRequest, KubeApiClient, ReconcileQueue } from '@conveyor/shared';
import { widgetKey } from '@conveyor/test/support/queue-fixtures';
import { Watcher, type WatcherQueue } from '@conveyor/watcher';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import {
  atLeast,
  bySize,
  Cleanups,
  createWidgets,
  percentile,
  queueSettingsOf,
  round,
  type Scenario,
  silentLogger,
  simCreate,
  until,
  WIDGET_RESOURCE,
} from '../bench-support.ts';

/**
 * The reference: BullMQ's own bulk add of `n` jobs with a payload like ours, in chunks of 1,000 (as
 * ReconcileQueue sends them), on a queue of its own. The only BullMQ call outside shared/, and only
 * to measure what BullMQ alone can do.
 */
async function rawAddBulk(redisUrl: string, n: number): Promise<number> {
  const url = new URL(redisUrl);
  const queue = new Queue(`raw-${randomBytes(4).toString('hex')}`, { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    await queue.waitUntilReady();
    const started = performance.now();
    for (let start = 0; start < n; start += 1_000) {
      const jobs = [];
      for (let i = start; i < Math.min(n, start + 1_000); i++) {
        jobs.push({
          name: 'event',
          data: encodeRequest({ reason: 'event' }, Date.now()),
          opts: { jobId: `raw~${i}`, removeOnComplete: true },
        });
      }
      await queue.addBulk(jobs);
    }
    return n / ((performance.now() - started) / 1000);
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

export const ingest: Scenario = async ({ size, log }) => {
  const n = bySize(size, { tiny: 300, default: 3_000, large: 20_000 });
  const cleanups = new Cleanups();
  try {
    const world = await startWidgetWorld({ log: { level: 'error' } });
    cleanups.add(() => world.close());
    log(`B2: creating ${n} Widgets`);
    await createWidgets(simCreate(world.sim), n);

    const referenceBefore = await rawAddBulk(world.config.redis.url, n);

    // Counts what reaches Redis: the first batch starts the clock, the batch that completes N stops it.
    let enqueued = 0;
    let firstAt = 0;
    let lastAt = 0;
    const queue: WatcherQueue = {
      async enqueueBatch(requests) {
        if (firstAt === 0) firstAt = performance.now();
        await world.queue.enqueueBatch(requests);
        enqueued += requests.length;
        if (enqueued >= n && lastAt === 0) lastAt = performance.now();
      },
    };
    const controller: ControllerSpec = { name: 'widgets', for: WIDGET_RESOURCE };
    const watcher = new Watcher({
      controller,
      transport: new KubeApiClient({ kubeConfig: world.sim.kubeConfig() }),
      queue,
      // The cursor says every existing Widget was enqueued by an earlier run, so the initial list enqueues nothing.
      cursor: { get: async () => String(world.sim.resourceVersion()), set: async () => {} },
      registry: createMetricsRegistry(),
      logger: silentLogger,
      resyncPeriodMs: 0,
    });
    cleanups.add(() => watcher.stop(2_000));
    await watcher.start();
    await watcher.waitReady(60_000);
    if (enqueued !== 0) throw new Error(`B2: the initial list enqueued ${enqueued} requests; expected none after the cursor`);

    // One deletecollection: the simulator emits N DELETED watch events at once, each a request.
    log(`B2: deleting ${n} Widgets in one request`);
    const deleted = await fetch(`${world.sim.url}/apis/example.com/v1/namespaces/default/widgets`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.sim.token}` },
    });
    await deleted.arrayBuffer();
    if (!deleted.ok) throw new Error(`B2: deletecollection answered ${deleted.status}`);
    await until(`${n} requests enqueued`, () => lastAt !== 0, 120_000, 5);
    const rate = n / ((lastAt - firstAt) / 1000);
    const depth = await world.queue.getDepth();
    // Issue 4 asks getDepth to answer in well under a millisecond: timed here with the N requests queued,
    // beside a PING on the same Redis (the floor of any round trip).
    const depthMs = await timeEach(500, () => world.queue.getDepth());
    const pinger = new Redis(world.config.redis.url);
    cleanups.add(async () => pinger.disconnect());
    const pingMs = await timeEach(500, () => pinger.ping());

    const referenceAfter = await rawAddBulk(world.config.redis.url, n);
    // The queue protocol alone (dedup, priority), without the watch path: where the gap to addBulk comes from.
    const protocolQueue = new ReconcileQueue({ ...queueSettingsOf(world.config, 'b2-protocol') }, { logger: silentLogger });
    cleanups.add(() => protocolQueue.close());
    const protocolStarted = performance.now();
    for (let start = 0; start < n; start += 1_000) {
      await protocolQueue.enqueueBatch(
        Array.from({ length: Math.min(1_000, n - start) }, (_, i) => ({ key: widgetKey(`w-${start + i}`), reason: 'event' as const })),
      );
    }
    const protocolRate = n / ((performance.now() - protocolStarted) / 1000);
    const reference = (referenceBefore + referenceAfter) / 2;
    const ratio = round(rate / reference, 3);
    log(`B2: ${Math.round(rate)} requests/s vs addBulk ${Math.round(reference)} jobs/s`);
    return {
      id: 'B2',
      title: 'Ingest',
      setup: `${n} Widgets deleted in one deletecollection → ${n} DELETED watch events → Watcher → ReconcileQueue (dedup, priorities) on a private Redis; reference: BullMQ addBulk of ${n} plain jobs in chunks of 1,000 on the same Redis, before and after`,
      figure: { label: 'watch events → requests enqueued', value: Math.round(rate), unit: 'requests/s' },
      reference: { label: 'raw BullMQ addBulk', value: Math.round(reference), unit: 'jobs/s' },
      ratio,
      goal: { text: '≥ 0.8 × addBulk', checks: [atLeast('enqueue rate / addBulk', ratio, 0.8)] },
      details: {
        events: n,
        requestsQueued: depth.waiting + depth.prioritized,
        addBulkBefore: Math.round(referenceBefore),
        addBulkAfter: Math.round(referenceAfter),
        reconcileQueueEnqueueBatchAlone: Math.round(protocolRate),
        reconcileQueueVsAddBulk: round(protocolRate / reference, 3),
        getDepthP50Ms: round(percentile(depthMs, 50), 3),
        getDepthP99Ms: round(percentile(depthMs, 99), 3),
        pingP50Ms: round(percentile(pingMs, 50), 3),
      },
      chart: {
        title: `B2: enqueue rate, ${n} requests (per second)`,
        unit: '/s',
        bars: [
          { label: 'raw addBulk (before)', value: Math.round(referenceBefore) },
          { label: 'raw addBulk (after)', value: Math.round(referenceAfter) },
          { label: 'ReconcileQueue alone', value: Math.round(protocolRate) },
          { label: 'watch → Watcher → queue', value: Math.round(rate) },
        ],
      },
      notes: [
        'getDepth (one Lua script over six sets) with {requestsQueued} requests queued: p50 {getDepthP50Ms} ms, p99 {getDepthP99Ms} ms, against {pingP50Ms} ms for a PING.',
        "Where the gap to addBulk is (INFO commandstats over 3,000 requests, issue 21): both send one BullMQ add script per request, pipelined, so the round trips are the same; Redis spends more time in ours — about 110 µs per request against 40 µs (measured on the loaded project machine; the ratio, not the figures, is the finding), most of it writing the job hash (HMSET about 18 µs against 3 µs) and the deduplication key and prioritized-set entry addBulk's jobs do not have. The job hash carries `opts` (deduplication id, backoff, attempts) and a payload longer than Redis's `hash-max-listpack-value` (64 B), so Redis builds it as a hashtable rather than a listpack: about 980 B against a plain job's few hundred (B9). `reconcileQueueEnqueueBatchAlone` beside the watcher's figure shows the watch path adds little: the gap is the queue protocol's per-job cost in Redis. Shorter job fields (the key is written four times: job id, payload, deduplication id and opts) would narrow it; that is a change of the payload format, not made here.",
      ],
    };
  } finally {
    await cleanups.run();
  }
};

/** Durations in ms of `count` sequential calls. */
async function timeEach(count: number, call: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  return times;
}
