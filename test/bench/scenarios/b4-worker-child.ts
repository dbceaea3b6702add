// B4's other processes: the worker (a queue worker whose reconcile is a short sleep, printing one line per
// reconcile start so the bench can time API write → reconcile start) and the resync producer.
//
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms>
//   prints `ready`, then `<epoch ms with fractions> <reason> <name>` per reconcile start; SIGTERM closes it.
// Usage: node b4-worker-child.ts <redis url> <redis prefix> <controller> resync <count>
//   enqueues <count> keys `r-<i>` at resync priority, prints `enqueued <ms>` and exits.
import { loadConfig, ReconcileQueue, startQueueWorker } from '@conveyor/shared';

const [url, prefix, controller, mode, first, second] = process.argv.slice(2);
if (url === undefined || prefix === undefined || controller === undefined || (mode !== 'worker' && mode !== 'resync')) {
  process.stderr.write(
    'usage: b4-worker-child.ts <redis url> <redis prefix> <controller> worker <concurrency> <reconcile ms> | resync <count>\n',
  );
  process.exit(2);
}
const config = loadConfig({ env: {}, overrides: { 'redis.url': url, 'redis.prefix': prefix, 'log.level': 'error' } });

if (mode === 'resync') {
  const queue = new ReconcileQueue({ controller, redis: config.redis, queue: config.queue });
  const started = performance.now();
  await queue.enqueueBatch(
    Array.from({ length: Number(first) }, (_, i) => ({
      key: { group: 'example.com', version: 'v1', resource: 'widgets', namespace: 'default', name: `r-${i}` },
      reason: 'resync' as const,
    })),
  );
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
