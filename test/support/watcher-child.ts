// A Watcher in a process of its own, for tests that SIGKILL it: argv[2] is a JSON ChildWatcherSettings; prints `ready` once synced.
import { configSchema, createLogger, createRedisConnection, KubeApiClient, ReconcileQueue, WatchCursorStore } from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher/watcher';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { WIDGETS } from './watcher-world.ts';

export interface ChildWatcherSettings {
  server: string;
  token: string;
  redisUrl: string;
  prefix: string;
  /** Queue and cursor name. */
  controller: string;
  cursorIntervalMs: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as ChildWatcherSettings;
const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'sim', server: settings.server, skipTLSVerify: true }],
  users: [{ name: 'sim', token: settings.token }],
  contexts: [{ name: 'sim', cluster: 'sim', user: 'sim' }],
  currentContext: 'sim',
});
const config = configSchema.parse({ redis: { url: settings.redisUrl, prefix: settings.prefix } });
const logger = createLogger({ level: 'silent' });
const queue = new ReconcileQueue({ controller: settings.controller, redis: config.redis, queue: config.queue }, { logger });
const cursor = new WatchCursorStore(createRedisConnection(config.redis, { logger }), {
  prefix: config.redis.prefix,
  controller: settings.controller,
});
const watcher = new Watcher({
  controller: { name: 'widgets', for: WIDGETS, predicates: ['generation'] },
  transport: new KubeApiClient({ kubeConfig: kc }),
  queue,
  cursor,
  registry: new Registry(),
  logger,
  streamingList: 'never',
  resyncPeriodMs: 0,
  cursorIntervalMs: settings.cursorIntervalMs,
});
await watcher.start();
await watcher.waitReady(120_000);
process.stdout.write('ready\n');
// Runs until killed.
setInterval(() => {}, 60_000);
