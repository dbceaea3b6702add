// A world for the watcher's integration tests: the API simulator with a Widget CRD, a private Redis, real ReconcileQueues that record what the watcher handed them, and Watchers on the real HTTP transport.
import { randomUUID } from 'node:crypto';
import {
  type ControllerSpec,
  configSchema,
  createLogger,
  createRedisConnection,
  formatKey,
  KubeApiClient,
  ReconcileQueue,
  type RedisConnection,
  WatchCursorStore,
} from '@conveyor/shared';
import type { WatcherRequest } from '@conveyor/watcher/enqueue-buffer';
import type { Shard } from '@conveyor/watcher/sharding';
import { type CursorStore, Watcher, type WatcherOptions, type WatcherQueue } from '@conveyor/watcher/watcher';
import { Registry } from 'prom-client';
import { type KubeSimulator, type KubeSimulatorOptions, type LoggedRequest, startKubeSimulator } from '../src/index.ts';
import { RedisServer } from './redis-server.ts';

export { waitFor } from './wait-for.ts';

export const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' };
export const WIDGETS_PATH = '/apis/example.com/v1/namespaces/default/widgets';
const logger = createLogger({ level: 'silent' });

const WIDGET_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

/** The Widget key string the queue and the recorder use. */
export function widgetKey(name: string, namespace = 'default'): string {
  return formatKey({ group: 'example.com', version: 'v1', plural: 'widgets', namespace, name });
}

/** A real ReconcileQueue that also remembers every request the watcher handed it, in order. */
export class RecordingQueue implements WatcherQueue {
  readonly queue: ReconcileQueue;
  /** Every request, as `formatKey` strings, in the order they reached the queue. */
  readonly keys: string[] = [];
  constructor(queue: ReconcileQueue) {
    this.queue = queue;
  }
  async enqueueBatch(requests: readonly WatcherRequest[]): Promise<void> {
    await this.queue.enqueueBatch(requests);
    for (const r of requests) this.keys.push(formatKey(r.key));
  }
  checkEpoch(): Promise<boolean> {
    return this.queue.checkEpoch();
  }
  retryParked(): Promise<number> {
    return this.queue.retryParked();
  }
  /** Requests from position `from` on, counted per key. */
  countsSince(from = 0): Map<string, number> {
    const counts = new Map<string, number>();
    for (const key of this.keys.slice(from)) counts.set(key, (counts.get(key) ?? 0) + 1);
    return counts;
  }
  /** Waiting requests (no worker runs in these tests, so this is every distinct key not yet merged away). */
  async waiting(): Promise<number> {
    const depth = await this.queue.getDepth();
    return depth.waiting + depth.prioritized;
  }
}

export interface StartedWatcher {
  watcher: Watcher;
  queue: RecordingQueue;
  registry: Registry;
}

export interface WatcherWorld {
  sim: KubeSimulator;
  redis: RedisServer;
  connection: RedisConnection;
  /** The Redis prefix of this world's queues and cursors. */
  prefix: string;
  /** A fresh queue (its own Redis keys) that records what reaches it. */
  newQueue(controller?: string): RecordingQueue;
  /** The cursor store of a controller name (one Redis hash per controller, as the watcher uses it). */
  cursorStore(controller: string): CursorStore;
  /** Starts a Watcher on the real HTTP transport and waits until it has synced. Stopped by `close`. */
  startWatcher(options: {
    controller?: Partial<ControllerSpec>;
    queue?: RecordingQueue;
    cursor?: CursorStore;
    shard?: Shard;
    settings?: Partial<WatcherOptions>;
    /** @defaultValue true */
    waitReady?: boolean;
  }): Promise<StartedWatcher>;
  /** An API request with the simulator's bearer token; throws on a non-2xx answer. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown>;
  /** Creates `count` Widgets `w-<i>` (starting at `from`) in `default`. */
  createWidgets(
    count: number,
    options?: { from?: number; labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[] },
  ): Promise<void>;
  /** A merge patch of a Widget (or of its status with `status: true`). */
  patchWidget(name: string, patch: unknown, status?: boolean): Promise<unknown>;
  /** List and watch requests logged by the simulator from sequence number `afterSeq` on. */
  readsSince(afterSeq?: number): LoggedRequest[];
  /** The last sequence number in the simulator's request log. */
  lastSeq(): number;
  close(): Promise<void>;
}

const MERGE_PATCH = 'application/merge-patch+json';

export async function startWatcherWorld(simOptions: KubeSimulatorOptions = {}): Promise<WatcherWorld> {
  const sim = await startKubeSimulator({ requestLogLimit: 50_000, ...simOptions });
  const redis = await RedisServer.start().catch(async (error: unknown) => {
    await sim.close();
    throw error;
  });
  const config = configSchema.parse({ redis: { url: redis.url, prefix: `w${randomUUID().slice(0, 8)}` } });
  const connection = createRedisConnection(config.redis, { logger });
  const queues: ReconcileQueue[] = [];
  const watchers: Watcher[] = [];

  const request = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const response = await fetch(`${sim.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${sim.token}`, 'content-type': contentType, accept: 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (response.status < 200 || response.status >= 300)
      throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  await request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', WIDGET_CRD);

  const world: WatcherWorld = {
    sim,
    redis,
    connection,
    prefix: config.redis.prefix,
    newQueue(controller = `c-${randomUUID().slice(0, 8)}`) {
      const queue = new ReconcileQueue({ controller, redis: config.redis, queue: config.queue }, { logger });
      queues.push(queue);
      return new RecordingQueue(queue);
    },
    cursorStore(controller) {
      return new WatchCursorStore(connection, { prefix: config.redis.prefix, controller });
    },
    async startWatcher(options) {
      const queue = options.queue ?? world.newQueue();
      const registry = new Registry();
      const watcher = new Watcher({
        controller: { name: 'widgets', for: WIDGETS, predicates: ['generation'], ...options.controller },
        transport: new KubeApiClient({ kubeConfig: sim.kubeConfig() }),
        queue,
        registry,
        logger,
        shard: options.shard,
        streamingList: 'never',
        resyncPeriodMs: 0,
        ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
        ...options.settings,
      });
      watchers.push(watcher);
      await watcher.start();
      // Generous: the machine may be busy with other test files.
      if (options.waitReady !== false) await watcher.waitReady(120_000);
      return { watcher, queue, registry };
    },
    request,
    async createWidgets(count, { from = 0, labels, annotations, finalizers } = {}) {
      // In-process: ordinary creates (watch events, resourceVersions) without 10,000 HTTP round trips.
      const widgets = Array.from({ length: count }, (_, j) => ({
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: {
          name: `w-${from + j}`,
          ...(labels === undefined ? {} : { labels }),
          ...(annotations === undefined ? {} : { annotations }),
          ...(finalizers === undefined ? {} : { finalizers }),
        },
        spec: { size: from + j },
      }));
      sim.createObjects({ group: 'example.com', version: 'v1', plural: 'widgets' }, 'default', widgets);
    },
    patchWidget(name, patch, status = false) {
      return request('PATCH', `${WIDGETS_PATH}/${name}${status ? '/status' : ''}`, patch, MERGE_PATCH);
    },
    readsSince(afterSeq = 0) {
      return sim.requests().requests.filter((r) => r.seq > afterSeq);
    },
    lastSeq() {
      return sim.requests().requests.at(-1)?.seq ?? 0;
    },
    async close() {
      await Promise.allSettled(watchers.map((w) => w.stop(1_000)));
      await Promise.allSettled(queues.map((q) => q.close()));
      connection.disconnect();
      await sim.close();
      await redis.close();
    },
  };
  return world;
}

/** The value of one series of a counter or gauge in a registry (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs` (generous: the machine is shared). */
