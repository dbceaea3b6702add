// A Watcher in a process of its own whose event loop is kept busy and whose every event costs CPU, for tests of a loaded watcher against a server that closes slow readers: argv[2] is a JSON BusyWatcherSettings.
//
// Prints JSON lines: `{"synced":true,"tracked":n}` once the first list is in, then `{"tracked":n}`
// every 100 ms, so the parent can wait for later events too. Runs until killed.
import { createLogger, KubeApiClient } from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher/watcher';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { WIDGETS } from './watcher-world.ts';

export interface BusyWatcherSettings {
  server: string;
  token: string;
  /** The event loop is blocked this long … */
  busyMs: number;
  /** … once every this many milliseconds (other work of a loaded watcher: Redis, HTTP, GC). */
  everyMs: number;
  /** CPU each list item and event costs the watcher's handling, in microseconds. */
  perEventMicros: number;
  /** The watcher's line buffer (watcher.watchBufferBytes); its default when absent. */
  watchBufferBytes?: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as BusyWatcherSettings;
const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Busy: nothing else runs in this process meanwhile.
  }
};
setInterval(() => spin(settings.busyMs), settings.everyMs);

const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'sim', server: settings.server, skipTLSVerify: true }],
  users: [{ name: 'sim', token: settings.token }],
  contexts: [{ name: 'sim', cluster: 'sim', user: 'sim' }],
  currentContext: 'sim',
});
const watcher = new Watcher({
  controller: {
    name: 'widgets',
    for: WIDGETS,
    // A predicate whose projection is computed for every list item and event: the handling cost.
    predicates: ['generation', { name: 'costly', changed: () => spin(settings.perEventMicros / 1000) }],
  },
  transport: new KubeApiClient({ kubeConfig: kc }),
  queue: { enqueueBatch: async () => {} },
  registry: new Registry(),
  logger: createLogger({ level: 'silent' }),
  resyncPeriodMs: 0,
  ...(settings.watchBufferBytes === undefined ? {} : { watchBufferBytes: settings.watchBufferBytes }),
});
await watcher.start();
await watcher.waitReady(120_000);
process.stdout.write(`${JSON.stringify({ synced: true, tracked: watcher.tracked })}\n`);
setInterval(() => process.stdout.write(`${JSON.stringify({ tracked: watcher.tracked })}\n`), 100);
