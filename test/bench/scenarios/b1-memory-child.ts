// B1's measuring process: holds the simulator's Widgets either in a Watcher (compact metadata; with `watcher-indexed`, also an index of a label for a mapped watch) or in a client-node informer, and prints the memory it took.
//
// Usage: node --expose-gc b1-memory-child.ts watcher|watcher-indexed|informer <server> <token> <count>
// Prints one JSON line: { heapBytes, rssBeforeBytes, rssAfterBytes, held, syncMs } — growth of the V8 heap plus ArrayBuffer memory
// (typed arrays keep their contents outside the V8 heap, and the watcher's table is typed arrays) over a baseline taken after every
// module was loaded, the process's RSS at that baseline and once it holds every object, and the time to hold every object.
import { createLogger, createMetricsRegistry, KubeApiClient } from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher';
import { CustomObjectsApi, type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import { simKubeConfig } from '../bench-support.ts';

const [mode, server, token, countText] = process.argv.slice(2);
const count = Number(countText);
if (
  (mode !== 'watcher' && mode !== 'watcher-indexed' && mode !== 'informer') ||
  server === undefined ||
  token === undefined ||
  !Number.isInteger(count)
) {
  process.stderr.write('usage: b1-memory-child.ts watcher|watcher-indexed|informer <server> <token> <count>\n');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const settle = async () => {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage();
};

const kc = simKubeConfig(server, token);
const base = await settle();
const startedAt = performance.now();
let held = 0;
let stop: () => Promise<void>;

if (mode === 'watcher' || mode === 'watcher-indexed') {
  // The indexed watcher also keeps, for a mapped watch of (no) ConfigMaps, an index of the label every Widget carries.
  const watches =
    mode === 'watcher'
      ? []
      : [{ resource: { group: '', version: 'v1', plural: 'configmaps' }, labels: 'b1/none=true', index: { label: 'tier' } }];
  const watcher = new Watcher({
    controller: { name: 'b1', for: { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' }, watches },
    transport: new KubeApiClient({ kubeConfig: kc }),
    // The requests go nowhere: B1 measures what the watcher keeps, not the queue.
    queue: { enqueueBatch: async () => {} },
    registry: createMetricsRegistry(),
    logger: createLogger({ level: process.env.BENCH_DEBUG === '1' ? 'info' : 'silent' }),
    resyncPeriodMs: 0,
  });
  await watcher.start();
  await watcher.waitReady(300_000);
  held = watcher.tracked;
  stop = () => watcher.stop(1_000);
} else {
  // What a typical TypeScript controller does: an informer over the whole objects.
  const api = kc.makeApiClient(CustomObjectsApi);
  const informer = makeInformer<KubernetesObject>(kc, '/apis/example.com/v1/namespaces/default/widgets', () =>
    api.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' }),
  );
  informer.on('error', () => {});
  await informer.start();
  const deadline = Date.now() + 300_000;
  while (informer.list().length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  held = informer.list().length;
  stop = () => informer.stop();
}
const syncMs = Math.round(performance.now() - startedAt);
const after = await settle();
const heldBytes = (m: NodeJS.MemoryUsage) => m.heapUsed + m.arrayBuffers;
process.stdout.write(
  `${JSON.stringify({ heapBytes: heldBytes(after) - heldBytes(base), rssBeforeBytes: base.rss, rssAfterBytes: after.rss, held, syncMs })}\n`,
);
await stop();
process.exit(0);
