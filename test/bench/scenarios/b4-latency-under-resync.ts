// B4 latency under resync: API write → reconcile start, p50/p99 at a steady write rate, alone and while a full resync of K keys is queued at resync priority.

import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type ControllerSpec, createMetricsRegistry, KubeApiClient } from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher';
import { Redis } from 'ioredis';
import { NODE_OPTIONS } from '../../../cli/build/sizing.ts';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import {
  atMost,
  bySize,
  Cleanups,
  createWidgets,
  cursorAt,
  percentile,
  redisCpuSeconds,
  round,
  type Scenario,
  type ScenarioResult,
  silentLogger,
  simCreate,
  simMergePatch,
  sleep,
  until,
  WIDGET_RESOURCE,
} from '../bench-support.ts';

const WORKER_CHILD = fileURLToPath(new URL('./b4-worker-child.ts', import.meta.url));
const MAIN_CHILD = fileURLToPath(new URL('./b4-main-child.ts', import.meta.url));
/** The young-generation setting of the generated pods' NODE_OPTIONS. */
const POD_YOUNG_GENERATION = NODE_OPTIONS.split(' ').find((flag) => flag.startsWith('--max-semi-space-size')) as string;

/** Epoch milliseconds with fractions: comparable with the worker process's timestamps. */
const wallClock = () => performance.timeOrigin + performance.now();

/** CPU seconds a process used so far, from /proc (Linux); undefined elsewhere or once it exited. */
function procCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields 14 and 15 (utime, stime) after the command name, in clock ticks of 1/100 s.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds a process's main thread has spent runnable but waiting for a core, from /proc/<pid>/schedstat
 * (Linux; its second field, in ns): how much of the machine's 2 cores the other processes held while it had
 * work to do. Undefined elsewhere or once the process exited.
 */
function runQueueWaitMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return undefined;
  }
}

/**
 * Starts one of B4's other processes (b4-worker-child.ts: `worker`, `resync` or `probe`) on the scenario's Redis and
 * controller, with `flags` for Node before the script; its stdout is piped, its stderr inherited.
 */
function spawnB4Child<Stdin extends 'ignore' | 'pipe'>(
  redis: { url: string; prefix: string },
  mode: 'worker' | 'resync' | 'probe',
  args: readonly string[],
  options: { flags?: readonly string[]; stdin: Stdin },
): ChildProcessByStdio<Stdin extends 'pipe' ? Writable : null, Readable, null> {
  // spawn's own overloads cannot follow a generic stdin setting; the type above is what that setting gives.
  return spawn(process.execPath, [...(options.flags ?? []), WORKER_CHILD, redis.url, redis.prefix, 'widgets', mode, ...args], {
    stdio: [options.stdin, 'pipe', 'inherit'],
  }) as ChildProcessByStdio<Stdin extends 'pipe' ? Writable : null, Readable, null>;
}

/** A phase's load as details named `<figure><phase>`. */
function loadDetails(phase: string, load: PhaseLoad): Record<string, number> {
  return Object.fromEntries(Object.entries(load).map(([name, value]) => [`${name}${phase}`, value]));
}

/** Garbage-collection pauses (start in epoch ms, length in ms) of this process and of the worker process. */
interface GcPauses {
  main: { at: number; ms: number }[];
  worker: { at: number; ms: number }[];
}

/** Where the machine's time went during one phase: CPU by process (in cores), event-loop delay, Redis round trips. */
interface PhaseLoad {
  benchCores: number;
  workerCores: number;
  redisCores: number;
  producerCores: number;
  loopP99Ms: number;
  /** Milliseconds per second of phase that the bench process's and the worker's main threads waited for a core while runnable. */
  benchRunQueueWaitMsPerSecond: number;
  workerRunQueueWaitMsPerSecond: number;
  /** The longest garbage-collection pause of the process that holds the simulator, watcher and writer, and its pauses per second of phase. */
  gcPauseMaxMs: number;
  gcMsPerSecond: number;
  /** The same for the worker process. */
  workerGcPauseMaxMs: number;
  workerGcMsPerSecond: number;
  redisPingP50Ms: number;
  redisPingP99Ms: number;
}

/**
 * B4 runs in a process of its own started with the generated pods' young-generation setting
 * (`--max-semi-space-size=4`, cli/build/sizing.ts), as the watcher runs in its pod, and so does its worker
 * process: with Node's own sizing the process that holds the simulator and the watcher collected a 40 MB
 * young generation every second in 10–30 ms pauses, and those pauses, not the queue, set the p99.
 */
export const latencyUnderResync: Scenario = async ({ size, log }) => {
  const child = spawn(process.execPath, [POD_YOUNG_GENERATION, MAIN_CHILD, size], { stdio: ['ignore', 'pipe', 'pipe'] });
  let result: ScenarioResult | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    result = JSON.parse(line) as ScenarioResult;
  });
  const errors: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.startsWith('B4')) log(line);
    else errors.push(line);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0 || result === undefined) throw new Error(`B4's process exited ${String(code)}: ${errors.slice(-20).join('\n')}`);
  return result;
};

/** The measurement itself, in the process {@link latencyUnderResync} starts. */
export const measureLatencyUnderResync: Scenario = async ({ size, log }) => {
  const rate = bySize(size, { tiny: 50, default: 200, large: 200 });
  const aloneMs = bySize(size, { tiny: 1_000, default: 10_000, large: 20_000 });
  const resyncKeys = bySize(size, { tiny: 300, default: 5_000, large: 20_000 });
  const spreadMs = bySize(size, { tiny: 1_000, default: 10_000, large: 20_000 });
  const pool = bySize(size, { tiny: 40, default: 300, large: 300 });
  const concurrency = 20;
  const reconcileMs = 5;
  const cleanups = new Cleanups();
  try {
    const world = await startWidgetWorld({ log: { level: 'error' } });
    cleanups.add(() => world.close());
    log(`B4: creating ${pool} Widgets to write to`);
    await createWidgets(simCreate(world.sim), pool);

    // Write time of each Widget with a write not yet seen by a reconcile.
    const written = new Map<string, number>();
    /**
     * Each reconciled write: when it was made (epoch ms), write → reconcile start, and its two parts when the watcher
     * handed it over: write → enqueue (simulator and watch path) and enqueue → reconcile start (the queue).
     */
    const samples: { at: number; latency: number; watch?: number; queue?: number }[] = [];
    let resyncDone = 0;
    // Garbage-collection pauses of this process (simulator, watcher, writer) and of the worker process, for the phase meter.
    const meterGc: GcPauses = { main: [], worker: [] };
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) meterGc.main.push({ at: performance.timeOrigin + e.startTime, ms: e.duration });
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    cleanups.add(() => gcObserver.disconnect());
    // When the watcher handed each written Widget's request to the queue.
    const handed = new Map<string, number>();
    // The worker runs in a process of its own, as in production: its work on the resync must not slow the watcher's event loop.
    const worker = spawnB4Child(world.config.redis, 'worker', [String(concurrency), String(reconcileMs)], {
      flags: NODE_OPTIONS.split(' '),
      stdin: 'ignore',
    });
    cleanups.add(async () => {
      if (worker.exitCode !== null) return;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      const timer = setTimeout(() => worker.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    });
    let workerReady = false;
    createInterface({ input: worker.stdout }).on('line', (line) => {
      if (line === 'ready') {
        workerReady = true;
        return;
      }
      const [t, reason, name] = line.split(' ');
      if (reason === 'gc') {
        meterGc.worker.push({ at: Number(t), ms: Number(name) });
        return;
      }
      if (reason === 'resync-started') {
        resyncDone += Number(name);
        return;
      }
      const at = name === undefined ? undefined : written.get(name);
      if (reason === 'event' && name !== undefined && at !== undefined) {
        written.delete(name);
        const queuedAt = handed.get(name);
        handed.delete(name);
        samples.push({
          at,
          latency: Number(t) - at,
          ...(queuedAt === undefined ? {} : { watch: queuedAt - at, queue: Number(t) - queuedAt }),
        });
      }
    });
    await until('the worker process', () => workerReady || worker.exitCode !== null, 60_000, 20);
    if (!workerReady) throw new Error(`B4: the worker process exited ${String(worker.exitCode)}`);
    const meter = await startPhaseMeter(world.config.redis.url, world.config.redis.prefix, worker.pid, meterGc, cleanups);
    const controller: ControllerSpec = { name: 'widgets', for: WIDGET_RESOURCE, predicates: ['generation'] };
    const watcher = new Watcher({
      controller,
      transport: new KubeApiClient({ kubeConfig: world.sim.kubeConfig() }),
      queue: {
        enqueueBatch: async (requests) => {
          const now = wallClock();
          for (const r of requests) {
            if (written.has(r.key.name)) handed.set(r.key.name, now);
          }
          await world.queue.enqueueBatch(requests);
        },
      },
      cursor: cursorAt(() => world.sim.resourceVersion()),
      registry: createMetricsRegistry(),
      logger: silentLogger,
      resyncPeriodMs: 0,
    });
    cleanups.add(() => watcher.stop(2_000));
    await watcher.start();
    await watcher.waitReady(60_000);

    /**
     * Spec edits at `rate` per second, each to a Widget with no write in flight, from the warm-up to the end of the
     * last phase: every phase starts with the writes, the watch path and the worker in the steady state the
     * reference phase starts in. (Writing only inside each phase left the cores idle while a resync producer
     * booted, and the first 50 ms after such a gap were slow even with a resync of 2 keys.)
     */
    let generation = 0;
    let writing = true;
    const writer = (async () => {
      const started = performance.now();
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; writing; i++) {
        const due = started + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const name = `w-${i % pool}`;
        if (written.has(name)) continue;
        generation += 1;
        written.set(name, wallClock());
        const p = simMergePatch(world.sim, `/apis/example.com/v1/namespaces/default/widgets/${name}`, {
          spec: { size: generation },
        }).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.all(inFlight);
    })();
    cleanups.add(async () => {
      writing = false;
      await writer.catch(() => {});
    });
    /** The samples of the writes made from `from` to `to` (epoch ms), once every one of them was reconciled. */
    const samplesOf = async (from: number, to: number) => {
      await until('every write of the phase reconciled', () => ![...written.values()].some((at) => at <= to), 60_000, 10);
      return samples.filter((s) => s.at >= from && s.at <= to);
    };

    // Warm-up (connections, JIT), not counted.
    await sleep(Math.min(2_000, aloneMs));

    log(`B4: ${rate} writes/s for ${aloneMs} ms, no resync`);
    let phase = await meter.begin();
    const aloneFrom = wallClock();
    await sleep(aloneMs);
    const aloneTo = wallClock();
    const loadAlone = await phase.end();
    const aloneSamples = await samplesOf(aloneFrom, aloneTo);

    /**
     * The steady writes go on while a resync of `resyncKeys` keys at resync priority drains. It comes from a
     * producer process of its own (as from a second watcher replica), so neither the watcher's connection nor its
     * event loop waits for it: at once (`spreadMs` 0, the worst case), or spread as the watcher spreads a resync.
     */
    const duringResync = async (label: string, spreadMs: number) => {
      log(`B4: the same while a resync of ${resyncKeys} keys (${label}) drains`);
      resyncDone = 0;
      let enqueuedAt = 0;
      let producerCpuSeconds = 0;
      // The producer boots (about 0.8 s of CPU loading modules) before the phase and starts on a line on its stdin:
      // the phase measures the resync, not a Node.js process starting beside it.
      const producer = spawnB4Child(world.config.redis, 'resync', [String(resyncKeys), `r${label.replace(/\W/g, '')}-`, String(spreadMs)], {
        stdin: 'pipe',
      });
      cleanups.add(() => {
        if (producer.exitCode === null) producer.kill('SIGKILL');
      });
      let producerReady = false;
      const enqueued = new Promise<void>((resolve, reject) => {
        createInterface({ input: producer.stdout }).on('line', (line) => {
          if (line === 'ready') producerReady = true;
          if (!line.startsWith('enqueued')) return;
          enqueuedAt = wallClock();
          producerCpuSeconds = Number(line.split(' ')[2] ?? 0);
        });
        producer.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`B4: the resync producer exited ${String(code)}`))));
      });
      enqueued.catch(() => {}); // awaited below; a failure before then must not be an unhandled rejection
      await until('the resync producer', () => producerReady || producer.exitCode !== null, 60_000, 20);
      if (!producerReady) {
        await enqueued;
        throw new Error('B4: the resync producer exited before it was ready');
      }
      // A second of the steady writes after the boot, so that the phase starts as the reference phase does.
      await sleep(1_000);
      phase = await meter.begin();
      const started = wallClock();
      producer.stdin.write('go\n');
      await until('the resync drained', () => resyncDone >= resyncKeys, 120_000, 5);
      const end = wallClock();
      await enqueued;
      const load = await phase.end(producerCpuSeconds);
      const during = await samplesOf(started, end);
      return { samples: during, load, enqueueMs: enqueuedAt - started, drainMs: end - started };
    };
    const burst = await duringResync('at once', 0);
    const spread = await duringResync('spread', spreadMs);

    const p = (values: number[], q: number) => round(percentile(values, q), 1);
    /** The figures of one phase's samples: write → reconcile start, and its watch and queue parts. */
    const figures = (of: typeof samples) => ({
      latency: of.map((s) => s.latency),
      watch: of.flatMap((s) => (s.watch === undefined ? [] : [s.watch])),
      queue: of.flatMap((s) => (s.queue === undefined ? [] : [s.queue])),
    });
    const { latency: alone, watch: watchAlone, queue: queueAlone } = figures(aloneSamples);
    const burstFigures = figures(burst.samples);
    const spreadFigures = figures(spread.samples);
    const during = burstFigures.latency;
    // The headline is the resync as the watcher runs it (spread, at resync priority); the all-at-once worst case is reported beside it.
    const ratio = round(p(spreadFigures.latency, 99) / p(alone, 99), 3);
    const burstRatio = round(p(during, 99) / p(alone, 99), 3);
    log(
      `B4: p99 alone ${p(alone, 99)} ms, during a resync at once ${p(during, 99)} ms, during a spread resync ${p(spreadFigures.latency, 99)} ms`,
    );
    return {
      id: 'B4',
      title: 'Latency under resync',
      setup: `${rate} spec edits/s to ${pool} Widgets through the simulator, Watcher and queue to a worker process at concurrency ${concurrency} (reconcile ${reconcileMs} ms); alone for ${aloneMs / 1000} s, then while a resync of ${resyncKeys} keys at resync priority drains, enqueued by a producer process of its own either spread evenly over ${spreadMs / 1000} s in 100 ms ticks (as the watcher spreads a resync over its period: the figure in the table) or at once (the worst case); the writes run throughout, and 2 s of warm-up writes, those while a producer boots and the second after it are not counted. The simulator, watcher and writer run in one process and the worker in another, both with the generated pods' young generation (\`${POD_YOUNG_GENERATION}\`); the producer process boots before its phase starts`,
      figure: { label: 'p99 write → reconcile start during a spread resync', value: p(spreadFigures.latency, 99), unit: 'ms' },
      reference: { label: 'p99 without resync', value: p(alone, 99), unit: 'ms' },
      ratio,
      goal: {
        text: 'p99 during resync ≤ 1.5 × p99 without, for a resync spread as the watcher spreads it and for one enqueued all at once',
        checks: [
          atMost('p99 during a spread resync / p99 without', ratio, 1.5),
          atMost('p99 during a resync enqueued at once / p99 without', burstRatio, 1.5),
        ],
      },
      details: {
        samplesAlone: alone.length,
        samplesDuringResyncAtOnce: during.length,
        p50AloneMs: p(alone, 50),
        p99AloneMs: p(alone, 99),
        p50DuringResyncAtOnceMs: p(during, 50),
        p99DuringResyncAtOnceMs: p(during, 99),
        p50WriteToEnqueueAloneMs: p(watchAlone, 50),
        p99WriteToEnqueueAloneMs: p(watchAlone, 99),
        p50WriteToEnqueueDuringAtOnceMs: p(burstFigures.watch, 50),
        p99WriteToEnqueueDuringAtOnceMs: p(burstFigures.watch, 99),
        p50EnqueueToStartAloneMs: p(queueAlone, 50),
        p99EnqueueToStartAloneMs: p(queueAlone, 99),
        p50EnqueueToStartDuringAtOnceMs: p(burstFigures.queue, 50),
        p99EnqueueToStartDuringAtOnceMs: p(burstFigures.queue, 99),
        ...loadDetails('Alone', loadAlone),
        ...loadDetails('DuringAtOnce', burst.load),
        ...loadDetails('DuringSpread', spread.load),
        resyncKeys,
        resyncAtOnceEnqueueMs: round(burst.enqueueMs, 0),
        resyncAtOnceDrainMs: round(burst.drainMs, 0),
        spreadResyncMs: spreadMs,
        samplesDuringSpreadResync: spreadFigures.latency.length,
        p50DuringSpreadResyncMs: p(spreadFigures.latency, 50),
        p99DuringSpreadResyncMs: p(spreadFigures.latency, 99),
        p99DuringResyncAtOnceRatio: burstRatio,
        p99WriteToEnqueueGrowthAtOnce: round(p(burstFigures.watch, 99) / p(watchAlone, 99), 2),
        p99EnqueueToStartGrowthAtOnce: round(p(burstFigures.queue, 99) / p(queueAlone, 99), 2),
        p99WriteToEnqueueDuringSpreadMs: p(spreadFigures.watch, 99),
        p99EnqueueToStartDuringSpreadMs: p(spreadFigures.queue, 99),
        spreadResyncDrainMs: round(spread.drainMs, 0),
      },
      chart: {
        title: 'B4: write → reconcile start (ms)',
        unit: 'ms',
        bars: [
          { label: 'p50 alone', value: p(alone, 50) },
          { label: 'p50 resync at once', value: p(during, 50) },
          { label: 'p50 resync spread', value: p(spreadFigures.latency, 50) },
          { label: 'p99 alone', value: p(alone, 99) },
          { label: 'p99 resync at once', value: p(during, 99) },
          { label: 'p99 resync spread', value: p(spreadFigures.latency, 99) },
        ],
      },
      notes: [
        'The simulator, watcher and writer share one process (called bench below); the worker and the resync producer have their own. The event-loop delay of the bench process (p99 above) adds to every latency.',
        'Garbage collection, the longest pause and milliseconds of pauses per second: bench process alone {gcPauseMaxMsAlone} ms, {gcMsPerSecondAlone} ms/s; during the resync at once {gcPauseMaxMsDuringAtOnce} ms, {gcMsPerSecondDuringAtOnce} ms/s; during the spread resync {gcPauseMaxMsDuringSpread} ms, {gcMsPerSecondDuringSpread} ms/s. Worker alone {workerGcPauseMaxMsAlone} ms, during the resyncs {workerGcPauseMaxMsDuringAtOnce} and {workerGcPauseMaxMsDuringSpread} ms. With Node’s own heap sizing (as B4 ran until it took the pods’ setting) the bench process collected a 40 MB young generation about once a second in 10–30 ms pauses, with a 60–150 ms old-generation collection every 20 s or so; each pause holds every write in flight, so they, not the queue, set the p99.',
        'Where the p99 grows with the resync at once, as a factor over the p99 without: write → enqueue (simulator and watch path) {p99WriteToEnqueueGrowthAtOnce}, enqueue → reconcile start (the queue, where resync priority acts) {p99EnqueueToStartGrowthAtOnce}.',
        'With the resync enqueued all at once: p99 {p99DuringResyncAtOnceMs} ms, a factor of {p99DuringResyncAtOnceRatio} over the p99 without (the goal is 1.5); the *DuringAtOnce* figures above are this case.',
        'What changed for issue 22, found from per-write timelines of this scenario (write, hand-over to the queue, reconcile start) laid against each process’s garbage-collection pauses: (1) the resync producer booted inside the measured phase, about 0.8 s of a core of module loading in its first second; it now boots before. (2) The simulator/watcher process and the worker ran with Node’s own heap sizing; they now run with the pods’ young generation (see above). (3) The reference phase was 5 s against about 11 s for the spread resync, so a rare long pause was twice as likely to land in the resync phase; both are now about 10 s. (4) The bench process read a line for every resync reconcile (1,000–2,000 a second during the resync); the worker now reports them as counts. (5) In the product: each worker admitted resync jobs for room that jobs already on their way to it were about to take, and handed the surplus back; beside 200 events/s about 1,500 of a 5,000-key resync were fetched twice, and a job cost 423 µs of worker and 308 µs of Redis CPU instead of 336 and 237. Admission now counts those jobs (shared/src/queue/lanes.ts) and none was handed back in the same drain. (6) The writes stopped between phases while each resync producer booted, so every resync phase, unlike the reference phase, began after a second of idle cores: with a resync of only 2 keys the writes of a phase’s first 40 ms took 10–23 ms against a p99 alone of 6–7 ms. The writes now run throughout, and a phase starts a second after its producer booted. (7) In the product: a resync batch went to Redis through BullMQ’s `addBulk`, a pipelined script per request; adding 5,000 keys at once took the producer 250–290 ms of CPU and Redis 180 ms, in a 380–400 ms burst beside the fresh events, and each delayed add set BullMQ’s marker, waking the blocked worker about 95 times. Resync requests now go to the backlog through one script call per 100 (`addToBacklog`, shared/src/queue/queue-scripts.ts; the layout test holds it to what BullMQ’s own add writes) and set no marker: 100–110 ms of producer CPU and 80 ms of Redis, 150 ms in all, and no wake-ups. On this scenario’s machine, 5 runs each, ratio medians before / after (7): the resync at once 2.2 (1.43–2.78) / 1.35 (1.30–1.93), the spread resync 1.38 / 1.11.',
        'What sets the p99 during the resync at once: a phase of 4–5 s holds about 900 writes, so its p99 is the 9th-slowest write, and one stall of 40–50 ms (about 10 writes) sets it. The stalls that remain are waits for a core, not for the queue: in the first 150 ms while the 5,000 requests go in, and in garbage-collection pauses of the worker and bench processes while the resync drains at about 1,100 reconciles a second on the 2 cores every process shares. Enqueue → reconcile start p50 is {p50EnqueueToStartDuringAtOnceMs} ms during the resync at once against {p50EnqueueToStartAloneMs} ms alone. A smaller `queue.resyncShare` drains more slowly and lowers the ratio further (0.25: at once 1.78, median of 5, before the backlog script, against 2.2 at 0.5). Tried and not kept: a large resync batch that adds its chunks only as the backlog drains (at most 500 waiting): on a slower 2-core machine, in 5 interleaved pairs, the p99 during the resync at once fell only from 173 to 110 ms (medians) while the alone p99 itself ranged 17–80 ms, too weak a gain for what it changes for callers (a large resync batch’s call would return only as workers drain it); ioredis auto-pipelining on the queue connection (drain 27–30 % slower); the simulator in a process of its own (no difference beyond the noise).',
        'Where the machine’s time went (cores = CPU seconds per second): alone, bench process {benchCoresAlone}, worker {workerCoresAlone}, Redis {redisCoresAlone}; during the resync at once, bench {benchCoresDuringAtOnce}, worker {workerCoresDuringAtOnce}, Redis {redisCoresDuringAtOnce}, producer {producerCoresDuringAtOnce}. Bench event-loop delay p99 {loopP99MsAlone} → {loopP99MsDuringAtOnce} ms; Redis PING p99 from an idle probe {redisPingP99MsAlone} → {redisPingP99MsDuringAtOnce} ms.',
        'Waiting for a core (milliseconds per second that a main thread was ready to run while other processes held both cores): bench process alone {benchRunQueueWaitMsPerSecondAlone}, during the resync at once {benchRunQueueWaitMsPerSecondDuringAtOnce}, during the spread resync {benchRunQueueWaitMsPerSecondDuringSpread}; worker alone {workerRunQueueWaitMsPerSecondAlone}, during the resyncs {workerRunQueueWaitMsPerSecondDuringAtOnce} and {workerRunQueueWaitMsPerSecondDuringSpread}.',
      ],
    };
  } finally {
    await cleanups.run();
  }
};

/**
 * Measures where the machine's time goes in each phase: CPU seconds of the bench process (simulator,
 * watcher, writer), the worker process, Redis and the resync producer, divided by the phase's length
 * (cores); the bench process's event-loop delay; and Redis round trips from a probe process of its own.
 */
async function startPhaseMeter(redisUrl: string, prefix: string, workerPid: number | undefined, gc: GcPauses, cleanups: Cleanups) {
  const redis = new Redis(redisUrl);
  cleanups.add(() => redis.quit());
  const probe = spawnB4Child({ url: redisUrl, prefix }, 'probe', [], { stdin: 'pipe' });
  cleanups.add(() => {
    if (probe.exitCode === null) probe.kill('SIGTERM');
  });
  const lines = createInterface({ input: probe.stdout });
  const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));
  await nextLine(); // ready
  const askProbe = async () => {
    const answer = nextLine();
    probe.stdin.write('\n');
    const [, p50 = '0', p99 = '0'] = (await answer).split(' ');
    return { p50: Number(p50), p99: Number(p99) };
  };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  return {
    async begin() {
      await askProbe();
      loopDelay.reset();
      loopDelay.enable();
      const started = {
        wall: performance.now(),
        epoch: performance.timeOrigin + performance.now(),
        bench: process.cpuUsage(),
        worker: procCpuSeconds(workerPid) ?? 0,
        benchWait: runQueueWaitMs(process.pid) ?? 0,
        workerWait: runQueueWaitMs(workerPid) ?? 0,
        redis: await redisCpuSeconds(redis),
      };
      return {
        async end(producerCpuSeconds = 0): Promise<PhaseLoad> {
          loopDelay.disable();
          const seconds = (performance.now() - started.wall) / 1000;
          const bench = process.cpuUsage(started.bench);
          const ping = await askProbe();
          const pauses = (list: GcPauses['main']) => list.filter((p) => p.at >= started.epoch).map((p) => p.ms);
          const [main, worker] = [pauses(gc.main), pauses(gc.worker)];
          const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
          return {
            benchCores: round((bench.user + bench.system) / 1e6 / seconds, 2),
            workerCores: round(((procCpuSeconds(workerPid) ?? 0) - started.worker) / seconds, 2),
            redisCores: round(((await redisCpuSeconds(redis)) - started.redis) / seconds, 2),
            producerCores: round(producerCpuSeconds / seconds, 2),
            loopP99Ms: round(loopDelay.percentile(99) / 1e6, 1),
            benchRunQueueWaitMsPerSecond: round(((runQueueWaitMs(process.pid) ?? 0) - started.benchWait) / seconds, 1),
            workerRunQueueWaitMsPerSecond: round(((runQueueWaitMs(workerPid) ?? 0) - started.workerWait) / seconds, 1),
            gcPauseMaxMs: round(Math.max(0, ...main), 1),
            gcMsPerSecond: round(sum(main) / seconds, 1),
            workerGcPauseMaxMs: round(Math.max(0, ...worker), 1),
            workerGcMsPerSecond: round(sum(worker) / seconds, 1),
            redisPingP50Ms: round(ping.p50, 2),
            redisPingP99Ms: round(ping.p99, 2),
          };
        },
      };
    },
  };
}
