// The measuring process of the watcher memory benchmark: a baseline after loading, then a Watcher synced on every Widget, and the growth per tracked object.
//
// Usage: node --expose-gc watcher-memory-child.ts <server> <token> <count> <pageSize>
// Prints one JSON line: { tracked, syncMs, base: {heapUsed, rss}, after: {heapUsed, rss} } in bytes.
import { createLogger } from '@conveyor/shared';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { createKubeTransport } from '../src/kube-http.ts';
import { Watcher } from '../src/watcher.ts';

const [server, token, countText, pageText] = process.argv.slice(2);
const count = Number(countText);
const pageSize = Number(pageText ?? '500');
if (server === undefined || token === undefined || !Number.isInteger(count) || !Number.isInteger(pageSize)) {
  process.stderr.write('usage: watcher-memory-child.ts <server> <token> <count> <pageSize>\n');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

/** Memory after repeated full collections, so garbage from parsing the list is not counted. */
async function settled(): Promise<{ heapUsed: number; rss: number }> {
  for (let i = 0; i < 4; i++) {
    (gc as () => void)();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'sim', server, skipTLSVerify: true }],
  users: [{ name: 'sim', token }],
  contexts: [{ name: 'sim', cluster: 'sim', user: 'sim', namespace: 'default' }],
  currentContext: 'sim',
});
const registry = new Registry();
const logger = createLogger({ level: 'silent' });
const transport = createKubeTransport(kc);
// Every module is loaded and the transport made before the baseline; only the watcher's own state grows after it.
const base = await settled();
const watcher = new Watcher({
  controller: { name: 'memory', for: { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' } },
  transport,
  // The requests go nowhere: this measures what the watcher keeps, not a queue client.
  queue: { enqueueBatch: async () => {} },
  registry,
  logger,
  pageSize,
  streamingList: 'never',
  resyncPeriodMs: 0,
});
const started = performance.now();
await watcher.start();
await watcher.waitReady(600_000);
const syncMs = performance.now() - started;
const after = await settled();
process.stdout.write(`${JSON.stringify({ tracked: watcher.tracked, syncMs, base, after })}\n`);
await watcher.stop(1_000);
process.exit(0);
