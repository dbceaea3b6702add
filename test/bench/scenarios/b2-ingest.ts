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
  redisCpuSeconds,
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
async function rawAddBulk(redisUrl: string, n: number, probe: Redis): Promise<PathCost> {
  const url = new URL(redisUrl);
  const queue = new Queue(`raw-${randomBytes(4).toString('hex')}`, { connection: { host: url.hostname, port: Number(url.port) } });
  try {
    await queue.waitUntilReady();
    const redisCpu = await redisCpuSeconds(probe);
    const cpu = process.cpuUsage();
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
    const rate = n / ((performance.now() - started) / 1000);
    return { rate, ...(await cpuPerRequest(n, cpu, redisCpu, probe)) };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/** A path's rate and its CPU per request: this process's (user + system) and Redis's, in µs. */
interface PathCost {
  rate: number;
  nodeUs: number;
  redisUs: number;
}

/** CPU per request since `cpu` (process.cpuUsage) and `redisCpu` (Redis's CPU seconds) were read. */
async function cpuPerRequest(n: number, cpu: NodeJS.CpuUsage, redisCpu: number, probe: Redis): Promise<Omit<PathCost, 'rate'>> {
  const used = process.cpuUsage(cpu);
  const redisUsed = (await redisCpuSeconds(probe)) - redisCpu;
  return { nodeUs: (used.user + used.system) / n, redisUs: (redisUsed * 1e6) / n };
}

export const ingest: Scenario = async ({ size, log }) => {
  const n = bySize(size, { tiny: 300, default: 3_000, large: 20_000 });
  const cleanups = new Cleanups();
  try {
    const world = await startWidgetWorld({ log: { level: 'error' } });
    cleanups.add(() => world.close());
    log(`B2: creating ${n} Widgets`);
    await createWidgets(simCreate(world.sim), n);

    // Reads Redis's CPU time around each path: how much of a request's cost is Redis's and how much this process's.
    const probe = new Redis(world.config.redis.url);
    cleanups.add(async () => probe.disconnect());
    const costBefore = await rawAddBulk(world.config.redis.url, n, probe);
    const referenceBefore = costBefore.rate;

    // Counts what reaches Redis: the first batch starts the clock, the batch that completes N stops it.
    let enqueued = 0;
    let firstAt = 0;
    let lastAt = 0;
    let windowCpu: NodeJS.CpuUsage | undefined;
    let windowNodeUs = 0;
    const queue: WatcherQueue = {
      async enqueueBatch(requests) {
        if (firstAt === 0) {
          firstAt = performance.now();
          windowCpu = process.cpuUsage();
        }
        await world.queue.enqueueBatch(requests);
        enqueued += requests.length;
        if (enqueued >= n && lastAt === 0) {
          lastAt = performance.now();
          const used = process.cpuUsage(windowCpu);
          windowNodeUs = (used.user + used.system) / n;
        }
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
    const watchRedisCpu = await redisCpuSeconds(probe);
    const deleted = await fetch(`${world.sim.url}/apis/example.com/v1/namespaces/default/widgets`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${world.sim.token}` },
    });
    await deleted.arrayBuffer();
    if (!deleted.ok) throw new Error(`B2: deletecollection answered ${deleted.status}`);
    await until(`${n} requests enqueued`, () => lastAt !== 0, 120_000, 5);
    const rate = n / ((lastAt - firstAt) / 1000);
    const watchRedisUs = (((await redisCpuSeconds(probe)) - watchRedisCpu) * 1e6) / n;
    const depth = await world.queue.getDepth();
    // Issue 4 asks getDepth to answer in well under a millisecond: timed here with the N requests queued,
    // beside a PING on the same Redis (the floor of any round trip).
    const depthMs = await timeEach(500, () => world.queue.getDepth());
    const pinger = new Redis(world.config.redis.url);
    cleanups.add(async () => pinger.disconnect());
    const pingMs = await timeEach(500, () => pinger.ping());

    const costAfter = await rawAddBulk(world.config.redis.url, n, probe);
    const referenceAfter = costAfter.rate;
    // The queue protocol alone (dedup, priority), without the watch path: where the gap to addBulk comes from.
    const protocolQueue = new ReconcileQueue({ ...queueSettingsOf(world.config, 'b2-protocol') }, { logger: silentLogger });
    cleanups.add(() => protocolQueue.close());
    const protocolRedisCpu = await redisCpuSeconds(probe);
    const protocolCpu = process.cpuUsage();
    const protocolStarted = performance.now();
    for (let start = 0; start < n; start += 1_000) {
      await protocolQueue.enqueueBatch(
        Array.from({ length: Math.min(1_000, n - start) }, (_, i) => ({ key: widgetKey(`w-${start + i}`), reason: 'event' as const })),
      );
    }
    const protocolRate = n / ((performance.now() - protocolStarted) / 1000);
    const protocolCost = await cpuPerRequest(n, protocolCpu, protocolRedisCpu, probe);
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
      goal: { text: '≥ 0.9 × addBulk', checks: [atLeast('enqueue rate / addBulk', ratio, 0.9)] },
      details: {
        events: n,
        requestsQueued: depth.waiting + depth.prioritized,
        addBulkBefore: Math.round(referenceBefore),
        addBulkAfter: Math.round(referenceAfter),
        reconcileQueueEnqueueBatchAlone: Math.round(protocolRate),
        reconcileQueueVsAddBulk: round(protocolRate / reference, 3),
        watchPathNodeCpuUsPerRequest: round(windowNodeUs, 1),
        watchPathRedisCpuUsPerRequest: round(watchRedisUs, 1),
        enqueueBatchAloneNodeCpuUsPerRequest: round(protocolCost.nodeUs, 1),
        enqueueBatchAloneRedisCpuUsPerRequest: round(protocolCost.redisUs, 1),
        addBulkNodeCpuUsPerJob: round((costBefore.nodeUs + costAfter.nodeUs) / 2, 1),
        addBulkRedisCpuUsPerJob: round((costBefore.redisUs + costAfter.redisUs) / 2, 1),
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
        "Where the time goes (issue 21: `--cpu-prof` of the measured window, and CPU time read around each path, which a busy machine disturbs far less than the rates): the watch path is limited by this one Node process, not by Redis. In the window it spends {watchPathNodeCpuUsPerRequest} µs of CPU per request: about {enqueueBatchAloneNodeCpuUsPerRequest} µs in enqueueBatch (BullMQ's job objects, msgpack and ioredis's command encoding: the work addBulk does too, {addBulkNodeCpuUsPerJob} µs per job) and the rest in the watcher (parsing each watch event's JSON, its digest, the key table, the event's span and metrics) and GC. Redis, on the other core, spends {watchPathRedisCpuUsPerRequest} µs per request against {addBulkRedisCpuUsPerJob} µs for a plain job (the deduplication key, the prioritized-set entry and the priority counter); that overlaps the watcher's work but for the last batch.",
        "What changed for issue 21: payload v2 leaves out the key (the job id carries it) and has short fields (about 40 B instead of 110 B), is built without the schema, one key format per request instead of three, no `removeOnFail: false` (BullMQ's default) in every job's options, job id suffixes cut from one random draw. Measured A/B on the 2-core machine: Redis memory per queued request 1,652 → 1,582 B, enqueueBatch alone about 37 → 31 µs of this process's CPU per request, the watch path about 81 → 70 µs. The ratio did not move (six interleaved pairs of single runs: median about 0.52 before and after, within this machine's run-to-run spread): the reference builds its payload with the same encodeRequest and got cheaper too, and the watcher's share is unchanged.",
        "Why the ratio stays below 0.9: enqueueBatch now costs this process about what addBulk does per job, so 0.9 would leave the watcher about a tenth of a request's time, and its own work per event is larger than the whole enqueue. What would close it: the BullMQ client off the watcher's event loop (a worker thread: parsing and enqueueing on two cores), more than one batch in flight, a cheaper decode of watch events, or adds without BullMQ's Job objects (one script call per request with arguments built by Conveyor: about 6 µs less per request in a probe, at the price of reaching behind another BullMQ API). Job hashes stay Redis hashtables, not listpacks: `opts` holds the job id and the deduplication id and is over `hash-max-listpack-value` (64 B), which only the Redis configuration can change.",
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
