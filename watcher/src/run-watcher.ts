// The watcher process around the Watcher class: kube transport, queue, cursor, HTTP (health, readiness, metrics, manual enqueue), autoscaler, leader election.
//
// Expected flow: open Redis and the kube transport, serve HTTP, then either become active at once
// (no election: replicas run active-active and the queue merges their duplicates) or campaign for a
// Lease and become active only while holding it. Active means: a Watcher streaming into the queue,
// the autoscaler (when enabled) and the manual-enqueue API enqueueing. Losing the Lease stops all
// three and goes back to standby; close() stops them, drains buffered requests into the queue,
// saves the cursor and releases the Lease.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import {
  type Config,
  type ControllerSpec,
  createKubeConfig,
  createMetricsRegistry,
  createRedisConnection,
  errorMessage,
  KubeApiClient,
  type Logger,
  METRIC,
  type ObjectKey,
  ReconcileQueue,
  type RedisConnection,
  WatchCursorStore,
} from '@conveyor/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { type Authenticator, type Authorizer, ChainAuth, KubeAuth, TokenFileAuth } from './api/auth.ts';
import { createReconcileApi, RECONCILE_PATH } from './api/reconcile-api.ts';
import { type Autoscaler, startAutoscaler } from './autoscaler/autoscaler.ts';
import { DeploymentScaleTarget, DispatcherConcurrencyTarget } from './autoscaler/scale-targets.ts';
import { LeaderElector } from './leader-election.ts';
import { formatShard, type Shard } from './sharding.ts';
import { Watcher } from './watcher.ts';

export interface RunWatcherOptions {
  controller: ControllerSpec;
  config: Config;
  logger: Logger;
  /** Where process-wide metrics go (default metrics, leader status); each active term adds the watcher's and autoscaler's. */
  registry?: Registry;
  /** Overrides `config.watcher.shard`. */
  shard?: Shard | undefined;
  /** @defaultValue createKubeConfig(config.kube) */
  kubeConfig?: KubeConfig;
  /** This replica's name in the Lease. @defaultValue `<hostname>_<random>` */
  identity?: string;
}

export interface WatcherHandle {
  /** `http://host:port` actually bound (port 0 picks a free one). */
  url: string;
  /** Resolves the first time this replica is active and its first list is synced (never on a standby that stays one). */
  ready: Promise<void>;
  /** Active and synced, right now. */
  isReady(): boolean;
  /** Running the Watcher now (always, without leader election). */
  isActive(): boolean;
  /** Stops everything: drains buffered requests to the queue, saves the cursor, releases the Lease. Idempotent. */
  close(): Promise<void>;
}

/** One period of being active: what runs only on the leader. */
interface Term {
  registry: Registry;
  watcher: Watcher;
  autoscaler: Autoscaler | undefined;
}

/** The name of a controller's Lease (`conveyor-widgets-watcher`); each shard elects its own leader (`conveyor-widgets-watcher-0-of-3`). */
export function leaseName(controller: string, shard: Shard | undefined): string {
  const base = `conveyor-${controller}-watcher`;
  return shard === undefined || shard.count === 1 ? base : `${base}-${shard.index}-of-${shard.count}`;
}

export async function runWatcher(options: RunWatcherOptions): Promise<WatcherHandle> {
  const { controller, config } = options;
  const logger = options.logger.child({ controller: controller.name });
  const shard = options.shard;
  const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
  const transport = new KubeApiClient({ kubeConfig });
  const auth = createAuth(config, transport);

  const base = options.registry ?? createMetricsRegistry();
  collectDefaultMetrics({ register: base });
  const lease = leaseName(controller.name, shard);
  // client-go's leader election metric, so existing dashboards and alerts work; 1 without election too (always active).
  const leaderStatus = new Gauge({
    name: METRIC.leaderElectionMasterStatus,
    help: '1 while this replica is the active one (holds the Lease, or runs without election), else 0',
    labelNames: ['name'] as const,
    registers: [base],
  });
  leaderStatus.set({ name: lease }, 0);

  const connection: RedisConnection = createRedisConnection(config.redis);
  connection.on('error', (error: unknown) => logger.warn({ err: errorMessage(error) }, 'redis connection error'));
  const queue = new ReconcileQueue({ controller: controller.name, redis: config.redis, queue: config.queue }, { connection, logger });
  const cursor = new WatchCursorStore(connection, { prefix: config.redis.prefix, controller: controller.name });

  let term: Term | undefined;
  let closing = false;
  let transitions: Promise<void> = Promise.resolve();

  const activate = async (): Promise<void> => {
    if (term !== undefined || closing) return;
    const registry = new Registry();
    const watcher = new Watcher({
      controller,
      transport,
      queue,
      cursor,
      registry,
      logger: logger.child({ component: 'watcher' }),
      shard,
      pageSize: config.watcher.pageSize,
      watchTimeoutMs: config.watcher.watchTimeout,
      bookmarkIntervalMs: config.watcher.bookmarkInterval,
      maxBackoffMs: config.watcher.maxBackoff,
      resyncPeriodMs: config.watcher.resyncPeriod,
    });
    let autoscaler: Autoscaler | undefined;
    term = { registry, watcher, autoscaler };
    leaderStatus.set({ name: lease }, 1);
    try {
      await watcher.start();
    } catch (error) {
      term = undefined;
      leaderStatus.set({ name: lease }, 0);
      await watcher.stop(0).catch(() => undefined);
      throw error;
    }
    if (config.autoscaler.enabled) {
      autoscaler = startAutoscaler({
        controller: controller.name,
        config,
        depth: () => queue.getDepth(),
        connection,
        target:
          config.autoscaler.target === 'dispatcher'
            ? new DispatcherConcurrencyTarget(connection, config.redis, controller.name, config.autoscaler.interval)
            : new DeploymentScaleTarget(transport, config.autoscaler.deployment),
        registry,
        logger: logger.child({ component: 'autoscaler' }),
      });
      term.autoscaler = autoscaler;
    }
    logger.info({ shard: formatShard(shard), autoscaler: config.autoscaler.enabled }, 'active: watching');
  };

  const deactivate = async (): Promise<void> => {
    const current = term;
    if (current === undefined) return;
    term = undefined;
    leaderStatus.set({ name: lease }, 0);
    current.autoscaler?.stop();
    await current.watcher.stop();
    logger.info('stopped watching');
  };

  /** Activations and deactivations run one after the other, in the order asked. */
  const setActive = (active: boolean): Promise<void> => {
    transitions = transitions
      .then(() => (active ? activate() : deactivate()))
      .catch((error: unknown) => logger.error({ err: errorMessage(error) }, active ? 'cannot start watching' : 'cannot stop watching'));
    return transitions;
  };

  const api =
    auth === undefined
      ? undefined
      : createReconcileApi({
          resource: {
            group: controller.for.group,
            version: controller.for.version,
            plural: controller.for.plural,
            namespaced: controller.for.namespaced ?? true,
          },
          auth,
          enqueue: async (keys: readonly ObjectKey[]) => {
            const current = term;
            // The reconcile API answers 503 with Retry-After: the caller retries, and reaches the leader through the Service.
            if (current === undefined) throw new Error('this replica is a standby, not the leader');
            await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'manual' as const })));
            current.watcher.metrics.enqueued.inc({ reason: 'manual' }, keys.length);
          },
          audit: logger.child({ component: 'reconcile-api' }),
          maxBodyBytes: config.api.maxBodyBytes,
          maxObjects: config.api.maxObjects,
        });

  const elector = config.watcher.leaderElect
    ? new LeaderElector({
        transport,
        namespace: config.watcher.leaseNamespace,
        name: lease,
        identity: options.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`,
        leaseDurationMs: config.watcher.leaseDuration,
        logger: logger.child({ component: 'leader-election', lease }),
        onChange: (leading) => setActive(leading),
      })
    : undefined;

  const isReady = () => term?.watcher.ready === true;
  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      logger.warn({ err: errorMessage(error), path: req.url }, 'HTTP request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === RECONCILE_PATH) {
      if (api === undefined) {
        req.resume();
        text(res, 404, 'the manual-enqueue API is off: set api.tokenFile and/or api.tokenReview\n');
        return;
      }
      await api(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      text(res, closing ? 503 : 200, closing ? 'stopping\n' : 'ok\n');
      return;
    }
    if (path === '/readyz') {
      // A standby is ready for its role (taking over); an active replica once its first list is synced.
      if (closing) text(res, 503, 'stopping\n');
      else if (term === undefined && elector !== undefined) text(res, 200, 'standby\n');
      else text(res, isReady() ? 200 : 503, isReady() ? 'ok\n' : 'not synced yet\n');
      return;
    }
    if (path === '/metrics') {
      const current = term;
      const registry = current === undefined ? base : Registry.merge([base, current.registry]);
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': base.contentType }).end(body);
      return;
    }
    text(res, 404, 'not found; try /healthz, /readyz, /metrics or POST /v1/reconcile\n');
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.http.port, config.http.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await queue.close().catch(() => undefined);
    connection.disconnect();
    throw new Error(`cannot serve HTTP on ${config.http.host}:${config.http.port}: ${errorMessage(error)}`);
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  if (elector === undefined) {
    try {
      await activate();
    } catch (error) {
      await closeServer(server);
      await queue.close().catch(() => undefined);
      connection.disconnect();
      throw error;
    }
  } else {
    elector.start();
  }

  let stopWaiting = false;
  const ready = (async () => {
    while (!isReady()) {
      if (stopWaiting) throw new Error('the watcher stopped before its first sync');
      await new Promise((resolve) => setTimeout(resolve, 50).unref());
    }
  })();
  ready.catch(() => undefined);

  let closed: Promise<void> | undefined;
  return {
    url,
    ready,
    isReady,
    isActive: () => term !== undefined,
    close() {
      closed ??= (async () => {
        closing = true;
        stopWaiting = true;
        // The elector hands leadership back only after the watcher stopped: buffered requests reach the queue first.
        if (elector !== undefined) await elector.stop();
        await setActive(false);
        await closeServer(server);
        await queue.close().catch(() => undefined);
        await connection.quit().catch(() => connection.disconnect());
        logger.info('watcher process stopped');
      })();
      return closed;
    },
  };
}

function createAuth(config: Config, transport: KubeApiClient): (Authenticator & Authorizer) | undefined {
  const links: (Authenticator & Authorizer)[] = [];
  if (config.api.tokenFile !== undefined) links.push(TokenFileAuth.fromFile(config.api.tokenFile));
  if (config.api.tokenReview) links.push(new KubeAuth(transport));
  if (links.length === 0) return undefined;
  return links.length === 1 ? links[0] : new ChainAuth(links);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
