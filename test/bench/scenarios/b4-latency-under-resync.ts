// B4 latency under resync: API write → reconcile start, p50/p99 at a steady write rate, alone and while a full resync of K keys is queued at resync priority.

import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type ControllerSpec, createMetricsRegistry } from '@conveyor/shared';
import { createKubeTransport, Watcher } from '@conveyor/watcher';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import {
  bySize,
  Cleanups,
  createWidgets,
  cursorAt,
  percentile,
  round,
  type Scenario,
  silentLogger,
  simCreate,
  simMergePatch,
  sleep,
  until,
  WIDGET_RESOURCE,
} from '../bench-support.ts';

const WORKER_CHILD = fileURLToPath(new URL('./b4-worker-child.ts', import.meta.url));

/** Epoch milliseconds with fractions: comparable with the worker process's timestamps. */
const wallClock = () => performance.timeOrigin + performance.now();

export const latencyUnderResync: Scenario = async ({ size, log }) => {
  const rate = bySize(size, { tiny: 50, default: 200, large: 200 });
  const aloneMs = bySize(size, { tiny: 1_000, default: 5_000, large: 10_000 });
  const resyncKeys = bySize(size, { tiny: 300, default: 5_000, large: 20_000 });
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
    let samples: { at: number; latency: number }[] = [];
    let resyncDone = 0;
    let toQueue: number[] = [];
    // When the watcher handed each measured request to the queue, and how long it then waited for a worker.
    const handed = new Map<string, number>();
    let inQueue: number[] = [];
    // The worker runs in a process of its own, as in production: its work on the resync must not slow the watcher's event loop.
    const worker = spawn(
      process.execPath,
      [WORKER_CHILD, world.config.redis.url, world.config.redis.prefix, 'widgets', 'worker', String(concurrency), String(reconcileMs)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
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
      if (reason === 'resync') resyncDone += 1;
      const at = name === undefined ? undefined : written.get(name);
      if (reason === 'event' && name !== undefined && at !== undefined) {
        written.delete(name);
        samples.push({ at, latency: Number(t) - at });
        const queuedAt = handed.get(name);
        if (queuedAt !== undefined) inQueue.push(Number(t) - queuedAt);
        handed.delete(name);
      }
    });
    await until('the worker process', () => workerReady || worker.exitCode !== null, 60_000, 20);
    if (!workerReady) throw new Error(`B4: the worker process exited ${String(worker.exitCode)}`);
    const controller: ControllerSpec = { name: 'widgets', for: WIDGET_RESOURCE, predicates: ['generation'] };
    const watcher = new Watcher({
      controller,
      transport: createKubeTransport(world.sim.kubeConfig()),
      queue: {
        enqueueBatch: async (requests) => {
          const now = wallClock();
          for (const r of requests) {
            const at = written.get(r.key.name);
            if (at !== undefined) {
              toQueue.push(now - at);
              handed.set(r.key.name, now);
            }
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

    /** Spec edits at `rate` per second, each to a Widget with no write in flight, until `stop` says so. */
    let generation = 0;
    const writeSteadily = async (stop: () => boolean) => {
      const started = performance.now();
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; !stop(); i++) {
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
      await until('every write reconciled', () => written.size === 0, 60_000, 10);
    };

    // Warm-up (connections, JIT), not counted.
    const warmStart = performance.now();
    await writeSteadily(() => performance.now() - warmStart >= Math.min(2_000, aloneMs));
    samples = [];
    toQueue = [];
    inQueue = [];

    log(`B4: ${rate} writes/s for ${aloneMs} ms, no resync`);
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const aloneStart = performance.now();
    await writeSteadily(() => performance.now() - aloneStart >= aloneMs);
    const alone = samples.map((s) => s.latency);
    const watchAlone = toQueue;
    toQueue = [];
    const queueAlone = inQueue;
    inQueue = [];
    loopDelay.disable();
    const loopAlone = loopDelay.percentile(99) / 1e6;
    loopDelay.reset();
    loopDelay.enable();
    samples = [];

    log(`B4: the same while a resync of ${resyncKeys} keys drains`);
    let resyncEnqueuedAt = 0;
    let resyncDrainedAt = 0;
    const duringStart = wallClock();
    // The whole resync at once, the worst case (the watcher spreads it over its period): only its priority keeps
    // events ahead. It comes from a producer process of its own (as from a second watcher replica), so neither the
    // watcher's connection nor its event loop waits for it.
    const producer = spawn(
      process.execPath,
      [WORKER_CHILD, world.config.redis.url, world.config.redis.prefix, 'widgets', 'resync', String(resyncKeys)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.add(() => {
      if (producer.exitCode === null) producer.kill('SIGKILL');
    });
    const resync = new Promise<void>((resolve, reject) => {
      createInterface({ input: producer.stdout }).on('line', (line) => {
        if (line.startsWith('enqueued')) resyncEnqueuedAt = wallClock();
      });
      producer.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`B4: the resync producer exited ${String(code)}`))));
    });
    await writeSteadily(() => {
      if (resyncDone >= resyncKeys && resyncDrainedAt === 0) resyncDrainedAt = wallClock();
      return resyncDrainedAt !== 0 || wallClock() - duringStart > 120_000;
    });
    await resync;
    await until('the resync drained', () => resyncDone >= resyncKeys, 120_000, 20);
    const end = resyncDrainedAt === 0 ? wallClock() : resyncDrainedAt;
    const during = samples.filter((s) => s.at <= end).map((s) => s.latency);
    loopDelay.disable();
    const loopDuring = loopDelay.percentile(99) / 1e6;

    const p = (values: number[], q: number) => round(percentile(values, q), 1);
    const ratio = p(during, 99) / p(alone, 99);
    log(`B4: p99 alone ${p(alone, 99)} ms, during resync ${p(during, 99)} ms`);
    return {
      id: 'B4',
      title: 'Latency under resync',
      setup: `${rate} spec edits/s to ${pool} Widgets through the simulator, Watcher and queue to a worker process at concurrency ${concurrency} (reconcile ${reconcileMs} ms); alone for ${aloneMs / 1000} s, then while a resync of ${resyncKeys} keys, enqueued at once at resync priority by a producer process of its own, drains (the watcher itself spreads a resync over its period, so this is the worst case); 2 s of warm-up writes are not counted`,
      figure: { label: 'p99 write → reconcile start during resync', value: p(during, 99), unit: 'ms' },
      reference: { label: 'p99 without resync', value: p(alone, 99), unit: 'ms' },
      ratio: round(ratio, 3),
      goal: { text: 'p99 during resync ≤ 1.5 × p99 without', holds: ratio <= 1.5 },
      details: {
        samplesAlone: alone.length,
        samplesDuringResync: during.length,
        p50AloneMs: p(alone, 50),
        p99AloneMs: p(alone, 99),
        p50DuringMs: p(during, 50),
        p99DuringMs: p(during, 99),
        p50WriteToEnqueueAloneMs: p(watchAlone, 50),
        p99WriteToEnqueueAloneMs: p(watchAlone, 99),
        p50WriteToEnqueueDuringMs: p(toQueue, 50),
        p99WriteToEnqueueDuringMs: p(toQueue, 99),
        p50EnqueueToStartAloneMs: p(queueAlone, 50),
        p99EnqueueToStartAloneMs: p(queueAlone, 99),
        p50EnqueueToStartDuringMs: p(inQueue, 50),
        p99EnqueueToStartDuringMs: p(inQueue, 99),
        p99EventLoopDelayAloneMs: round(loopAlone, 1),
        p99EventLoopDelayDuringMs: round(loopDuring, 1),
        resyncKeys,
        resyncEnqueueMs: round(resyncEnqueuedAt - duringStart, 0),
        resyncDrainMs: round(end - duringStart, 0),
      },
      chart: {
        title: 'B4: write → reconcile start (ms)',
        unit: 'ms',
        bars: [
          { label: 'p50 alone', value: p(alone, 50) },
          { label: 'p50 during resync', value: p(during, 50) },
          { label: 'p99 alone', value: p(alone, 99) },
          { label: 'p99 during resync', value: p(during, 99) },
        ],
      },
      notes: [
        'The simulator, watcher and writer share the bench process; the worker and the resync producer have their own. The event-loop delay of the bench process (p99 above) adds to every latency.',
        `Where the p99 grows: write → enqueue (simulator and watch path) ${round(p(toQueue, 99) / p(watchAlone, 99), 2)}×, enqueue → reconcile start (the queue, where resync priority acts) ${round(p(inQueue, 99) / p(queueAlone, 99), 2)}×.`,
      ],
    };
  } finally {
    await cleanups.run();
  }
};
