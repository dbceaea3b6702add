// B4's other processes: the worker (a queue worker whose reconcile is a short sleep, printing one line per
// reconcile start so the bench can time API write → reconcile start) and the resync producer.
//
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms>
//   prints `ready`, then `<epoch ms with fractions> <reason> <name>` per event or manual reconcile start, `<epoch ms>
//   resync-started <count>` every 50 ms while resync reconciles start, and `<epoch ms> gc <pause ms>` per
//   garbage-collection pause; SIGTERM closes it.
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> resync <count> <name prefix> <spread ms>
//   prints `ready` once booted and connected; on the first line of stdin enqueues <count> keys `<name prefix><i>` at
//   resync priority — at once, or evenly over <spread ms> in 100 ms ticks as the watcher's resync does over its
//   period — then prints `enqueued <ms> <CPU seconds since the go line>` and exits.
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> probe
//   PINGs Redis every 10 ms on a connection of its own (its event loop idles, so the round trip is Redis's
//   latency plus the machine's scheduling); each line on stdin asks for `probe <p50> <p99> <max>` of the
//   round trips since the last answer.
import { PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { loadConfig, ReconcileQueue, startQueueWorker } from '@conveyor/shared';
import { Redis } from 'ioredis';

const [url, prefix, controller, mode, first, second, third] = process.argv.slice(2);
if (url === undefined || prefix === undefined || controller === undefined || (mode !== 'worker' && mode !== 'resync' && mode !== 'probe')) {
  process.stderr.write(
    'usage: b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms> | resync <count>\n',
  );
  process.exit(2);
}
// Narrowed by the check above, for the function below.
const redisUrl: string = url;
const redisPrefix: string = prefix;
const controllerName: string = controller;

if (mode === 'probe') {
  const redis = new Redis(url);
  let rtts: number[] = [];
  const timer = setInterval(() => {
    const started = performance.now();
    void redis.ping().then(() => rtts.push(performance.now() - started));
  }, 10);
  const at = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor((q / 100) * sorted.length))] ?? 0;
  createInterface({ input: process.stdin }).on('line', () => {
    const sorted = rtts.sort((a, b) => a - b);
    rtts = [];
    process.stdout.write(`probe ${at(sorted, 50).toFixed(3)} ${at(sorted, 99).toFixed(3)} ${(sorted.at(-1) ?? 0).toFixed(3)}\n`);
  });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    clearInterval(timer);
    redis.disconnect();
    process.exit(0);
  });
} else {
  await runChild();
}

async function runChild(): Promise<void> {
  const config = loadConfig({ env: {}, overrides: { 'redis.url': redisUrl, 'redis.prefix': redisPrefix, 'log.level': 'error' } });

  if (mode === 'resync') {
    const queue = new ReconcileQueue({ controller: controllerName, redis: config.redis, queue: config.queue });
    const count = Number(first);
    const spreadMs = Number(third ?? '0');
    const tickMs = 100;
    const request = (i: number) => ({
      key: { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: `${second ?? 'r-'}${i}` },
      reason: 'resync' as const,
    });
    // Boot (loading modules, connecting) is done before the measured phase: print `ready`, start on the first line of stdin.
    await queue.getDepth();
    process.stdout.write('ready\n');
    await new Promise((resolve) => createInterface({ input: process.stdin }).once('line', resolve));
    const cpuAtGo = process.cpuUsage();
    const started = performance.now();
    let sent = 0;
    while (sent < count) {
      const elapsed = performance.now() - started;
      const due = spreadMs <= 0 ? count : Math.min(count, Math.floor((count * (elapsed + tickMs)) / spreadMs));
      if (due > sent) {
        await queue.enqueueBatch(Array.from({ length: due - sent }, (_, j) => request(sent + j)));
        sent = due;
      }
      if (sent < count) await new Promise((resolve) => setTimeout(resolve, tickMs - ((performance.now() - started) % tickMs)));
    }
    const cpu = process.cpuUsage(cpuAtGo);
    process.stdout.write(`enqueued ${(performance.now() - started).toFixed(0)} ${((cpu.user + cpu.system) / 1e6).toFixed(3)}\n`);
    await queue.close();
    process.exit(0);
  }
  const concurrencyText = first;
  const reconcileMsText = second;
  const reconcileMs = Number(reconcileMsText);
  // Every garbage-collection pause, for the bench to tell them from queue waits.
  new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      process.stdout.write(`${(performance.timeOrigin + e.startTime).toFixed(3)} gc ${e.duration.toFixed(2)}\n`);
  }).observe({ entryTypes: ['gc'] });
  let resyncStarted = 0;
  const resyncTicker = setInterval(() => {
    if (resyncStarted === 0) return;
    process.stdout.write(`${(performance.timeOrigin + performance.now()).toFixed(3)} resync-started ${resyncStarted}\n`);
    resyncStarted = 0;
  }, 50);
  const worker = startQueueWorker({
    controller: controllerName,
    redis: config.redis,
    queue: config.queue,
    concurrency: Number(concurrencyText),
    processor: async (request) => {
      // Resync starts are only counted: a line each would have the bench process read 1,000–2,000 lines a second
      // on the event loop it shares with the watcher, exactly while the resync runs.
      if (request.reason === 'resync') resyncStarted += 1;
      // Wall-clock with sub-millisecond fractions, comparable across processes on one machine.
      else process.stdout.write(`${(performance.timeOrigin + performance.now()).toFixed(3)} ${request.reason} ${request.key.name}\n`);
      await new Promise((resolve) => setTimeout(resolve, reconcileMs));
      return { kind: 'done' };
    },
  });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    clearInterval(resyncTicker);
    void worker.close(2_000).finally(() => process.exit(0));
  });
}
