// The watcher process, wired: Redis, the Kubernetes client, the queue and cursor, the ops HTTP server with the reconcile API, and leader election around the active term.
//
// Expected flow: open Redis and the Kubernetes client, serve HTTP, then either become active at once
// (no election: replicas run active-active and the queue merges their duplicates) or campaign for a
// Lease and become active only while holding it (leader-term.ts says what "active" runs). close()
// stops the term — buffered requests drained into the queue, cursor saved — and releases the Lease.
// Guarantees: runWatcher resolves once HTTP is served, without waiting for Redis or the API server:
// while either is away /readyz answers 503 saying which, the connections log one line per retry
// interval, and close() still returns within `watcher.shutdownGrace` (plus the Lease release, whose
// requests have their own timeout).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  apiRequestCounter,
  type Config,
  type ControllerSpec,
  closeRedisConnection,
  combinedMetrics,
  configsPerController,
  createKubeConfig,
  createMetricsRegistry,
  createRedisConnection,
  errorMessage,
  KubeApiClient,
  type Logger,
  METRIC,
  type ObjectKey,
  type OpsServer,
  type Probe,
  ReconcileQueue,
  type RedisConnection,
  type Route,
  startOpsServer,
  uniqueControllers,
  WatchCursorStore,
  workqueueAdds,
} from '@conveyor/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { type Authenticator, type Authorizer, ChainAuth, KubeAuth, TokenFileAuth } from './api/auth.ts';
import { createReconcileApi, NotActiveError, RECONCILE_PATH } from './api/reconcile-api.ts';
import { LeaderElector } from './leader-election.ts';
import { LeaderTerms, termReady, type WatchUnit } from './leader-term.ts';
import type { Shard } from './sharding.ts';

export interface RunWatcherOptions {
  /** The controller, or several: one process then watches for all of them under one Lease, each into its own queue. */
  controller: ControllerSpec | readonly ControllerSpec[];
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

/**
 * The name of a controller's Lease (`conveyor-widgets-watcher`); each shard elects its own leader (`conveyor-widgets-watcher-0-of-3`).
 * A process watching for several controllers holds one Lease for all of them, named after all of them in the order
 * given (`conveyor-widgets-gadgets-watcher`).
 */
export function leaseName(controller: string | readonly string[], shard: Shard | undefined): string {
  const names = typeof controller === 'string' ? [controller] : controller;
  const base = `conveyor-${names.join('-')}-watcher`;
  return shard === undefined || shard.count === 1 ? base : `${base}-${shard.index}-of-${shard.count}`;
}

export async function runWatcher(options: RunWatcherOptions): Promise<WatcherHandle> {
  const { config } = options;
  const controllers = uniqueControllers(Array.isArray(options.controller) ? options.controller : [options.controller as ControllerSpec]);
  const names = controllers.map((c) => c.name);
  const configs = configsPerController(config, names);
  const logger = options.logger.child(names.length === 1 ? { controller: names[0] } : { controllers: names });
  const base = options.registry ?? createMetricsRegistry();
  collectDefaultMetrics({ register: base });
  const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
  // One registry and one client per controller: its API requests and adds are counted under its name.
  const clientFor = (registry: Registry, name: string) => {
    const counted = apiRequestCounter(registry, name);
    return new KubeApiClient({ kubeConfig, onRequest: (verb, code) => counted(verb, code) });
  };
  const registries = names.length === 1 ? [base] : names.map(() => createMetricsRegistry());
  // The process's own requests (the Lease, the reconcile API's reviews, the autoscaler's Deployment): one controller's
  // when there is one, as before; with several, counted under the Lease's controllers joined by "+", in a registry of
  // their own that joins the controllers' (the same metric name may not appear twice in one exposition).
  const own = names.length === 1 ? base : createMetricsRegistry();
  if (names.length > 1) registries.push(own);
  const client = clientFor(own, names.length === 1 ? (names[0] as string) : names.join('+'));
  const lease = leaseName(names, options.shard);
  const leaderStatus = leaderStatusGauge(base, lease);

  const connection: RedisConnection = createRedisConnection(config.redis, { logger });
  const units: WatchUnit[] = controllers.map((controller, index) => {
    const registry = registries[index] as Registry;
    const queue = new ReconcileQueue(
      { controller: controller.name, redis: config.redis, queue: config.queue },
      { connection, logger, onAdded: workqueueAdds(registry, controller.name) },
    );
    return {
      controller,
      config: configs.get(controller.name) as Config,
      client: names.length === 1 ? client : clientFor(registry, controller.name),
      queue,
      cursor: new WatchCursorStore(connection, { prefix: config.redis.prefix, controller: controller.name }),
    };
  });
  const terms = new LeaderTerms({
    units,
    config,
    logger,
    client,
    connection,
    shard: options.shard,
    onActive: (active) => leaderStatus.set({ name: lease }, active ? 1 : 0),
  });
  const elector = config.watcher.leaderElect
    ? new LeaderElector({
        transport: client,
        namespace: config.watcher.leaseNamespace,
        name: lease,
        identity: options.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`,
        leaseDurationMs: config.watcher.leaseDuration,
        logger: logger.child({ component: 'leader-election', lease }),
        onChange: (leading) => terms.setActive(leading),
      })
    : undefined;
  const closeQueues = () => Promise.all(units.map((unit) => unit.queue.close().catch(() => undefined)));

  let closing = false;
  const isReady = () => termReady(terms.term);
  const release = async () => {
    await closeQueues();
    connection.disconnect();
  };
  let server: OpsServer;
  try {
    server = await startOpsServer({
      host: config.http.host,
      port: config.http.port,
      health: () => (closing ? { ok: false, body: 'stopping\n' } : { ok: true, body: 'ok\n' }),
      ready: () =>
        readiness({
          closing,
          redisUp: connection.status === 'ready',
          standby: terms.term === undefined && elector !== undefined,
          synced: isReady(),
          forbidden: elector?.forbidden,
        }),
      metrics: async () => {
        const term = terms.term;
        if (names.length === 1) {
          const registry = term === undefined ? base : Registry.merge([base, ...term.registries]);
          return { contentType: base.contentType, body: await registry.metrics() };
        }
        return { contentType: base.contentType, body: await combinedMetrics(base, [...registries, ...(term?.registries ?? [])]) };
      },
      routes: { [RECONCILE_PATH]: reconcileRoute(units, config, client, logger, terms) },
      onError: (error, path) => logger.warn({ err: errorMessage(error), path }, 'HTTP request failed'),
    });
  } catch (error) {
    await release();
    throw error;
  }

  if (elector === undefined) terms.keepActive();
  else elector.start();

  let closed: Promise<void> | undefined;
  return {
    url: server.url,
    ready: terms.ready,
    isReady,
    isActive: () => terms.term !== undefined,
    close() {
      closed ??= (async () => {
        closing = true;
        // The elector hands leadership back only after the watcher stopped: buffered requests reach the queue first.
        if (elector !== undefined) await elector.stop();
        await terms.close(config.watcher.shutdownGrace);
        await server.close();
        await closeQueues();
        await closeRedisConnection(connection);
        logger.info('watcher process stopped');
      })();
      return closed;
    },
  };
}

/** client-go's leader election metric, so existing dashboards and alerts work; 1 without election too (always active). */
function leaderStatusGauge(registry: Registry, lease: string): Gauge<'name'> {
  const gauge = new Gauge({
    name: METRIC.leaderElectionMasterStatus,
    help: '1 while this replica is the active one (holds the Lease, or runs without election), else 0',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  gauge.set({ name: lease }, 0);
  return gauge;
}

/**
 * A standby is ready for its role (taking over) unless RBAC refuses it the Lease, when it can never take
 * over; an active replica once its first list is synced; neither while Redis is away.
 */
function readiness(state: { closing: boolean; redisUp: boolean; standby: boolean; synced: boolean; forbidden: string | undefined }): Probe {
  if (state.closing) return { ok: false, body: 'stopping\n' };
  if (!state.redisUp) return { ok: false, body: 'Redis unreachable\n' };
  if (state.forbidden !== undefined) return { ok: false, body: `cannot lead: ${state.forbidden}\n` };
  if (state.standby) return { ok: true, body: 'standby\n' };
  return state.synced ? { ok: true, body: 'ok\n' } : { ok: false, body: 'not synced yet\n' };
}

/** `POST /v1/reconcile`, or a 404 saying how to turn it on. Enqueues only while this replica is active. */
function reconcileRoute(units: readonly WatchUnit[], config: Config, client: KubeApiClient, logger: Logger, terms: LeaderTerms): Route {
  const auth = createAuth(config, client);
  if (auth === undefined) {
    return async (req, res) => {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' }).end('the manual-enqueue API is off: set api.tokenFile and/or api.tokenReview\n');
    };
  }
  return createReconcileApi({
    resources: units.map(({ controller }) => ({ ...controller.for, namespaced: controller.for.namespaced ?? true })),
    auth,
    enqueue: async (keys: readonly ObjectKey[], trace: string | undefined) => {
      const term = terms.term;
      // The reconcile API answers 503 with Retry-After: the caller retries, and reaches the leader through the Service.
      if (term === undefined) throw new NotActiveError();
      // The keys are of one resource: every controller of that resource reconciles them.
      const [first] = keys;
      for (const unit of units) {
        const own = unit.controller.for;
        if (first === undefined || own.group !== first.group || own.plural !== first.plural) continue;
        await unit.queue.enqueueBatch(keys.map((key) => ({ key, reason: 'manual' as const, ...(trace === undefined ? {} : { trace }) })));
        term.watchers.get(unit.controller.name)?.metrics.enqueued.inc({ reason: 'manual' }, keys.length);
      }
    },
    audit: logger.child({ component: 'reconcile-api' }),
    maxBodyBytes: config.api.maxBodyBytes,
    maxObjects: config.api.maxObjects,
    timeoutMs: config.api.timeout,
  });
}

function createAuth(config: Config, client: KubeApiClient): (Authenticator & Authorizer) | undefined {
  const links: (Authenticator & Authorizer)[] = [];
  if (config.api.tokenFile !== undefined) links.push(TokenFileAuth.fromFile(config.api.tokenFile));
  if (config.api.tokenReview) links.push(new KubeAuth(client, { timeoutMs: config.api.timeout }));
  if (links.length === 0) return undefined;
  return links.length === 1 ? links[0] : new ChainAuth(links);
}
