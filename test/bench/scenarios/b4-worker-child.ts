// B4's other processes: the worker (a queue worker whose reconcile is a short sleep, printing one line per
// reconcile start so the bench can time API write → reconcile start) and the resync producer.
//
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms>
//   prints `ready`, then `<epoch ms with fractions> <reason> <name>` per reconcile start; SIGTERM closes it.
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> resync <count> <name prefix> <spread ms>
//   enqueues <count> keys `<name prefix><i>` at resync priority — at once, or evenly over <spread ms> in 100 ms
//   ticks as the watcher's resync does over its period — prints `enqueued <ms>` and exits.
import { loadConfig, ReconcileQueue, startQueueWorker } from '@conveyor/shared';

const [url, prefix, controller, mode, first, second, third] = process.argv.slice(2);
if (url === undefined || prefix === undefined || controller === undefined || (mode !== 'worker' && mode !== 'resync')) {
  process.stderr.write(
    'usage: b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms> | resync <count>\n',
  );
  process.exit(2);
}
const config = loadConfig({ env: {}, overrides: { 'redis.url': url, 'redis.prefix': prefix, 'log.level': 'error' } });

if (mode === 'resync') {
  const queue = new ReconcileQueue({ controller, redis: config.redis, queue: config.queue });
  const count = Number(first);
  const spreadMs = Number(third ?? '0');
  const tickMs = 100;
  const request = (i: number) => ({
    key: { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: `${second ?? 'r-'}${i}` },
    reason: 'resync' as const,
  });
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
  process.stdout.write(`enqueued ${(performance.now() - started).toFixed(0)}\n`);
  await queue.close();
  process.exit(0);
}
const concurrencyText = first;
const reconcileMsText = second;
const reconcileMs = Number(reconcileMsText);
const worker = startQueueWorker({
  controller,
  redis: config.redis,
  queue: config.queue,
  concurrency: Number(concurrencyText),
  processor: async (request) => {
    // Wall-clock with sub-millisecond fractions, comparable across processes on one machine.
    process.stdout.write(`${(performance.timeOrigin + performance.now()).toFixed(3)} ${request.reason} ${request.key.name}\n`);
    await new Promise((resolve) => setTimeout(resolve, reconcileMs));
    return { kind: 'done' };
  },
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker.close(2_000).finally(() => process.exit(0));
});
