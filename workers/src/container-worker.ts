// The container runtime: a queue worker running one controller's reconciles, with the shared API budget, metrics, health, and graceful shutdown.

import {
  type Config,
  type Controller,
  closeControllerDeps,
  closeRedisConnection,
  controllerResources,
  createKubeConfig,
  createLogger,
  createMetricsRegistry,
  createRedisConnection,
  errorMessage,
  fieldManagerOf,
  KubeApiClient,
  type KubeObject,
  type Logger,
  type OpsServer,
  OwnWriteRecorder,
  type QueueWorker,
  ReconcileQueue,
  RedisApiBudget,
  type RedisConnection,
  reconcileMetrics,
  startOpsServer,
  startQueueWorker,
  waitForRedis,
  workqueueDepthGauge,
} from '@conveyor/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { eventRecorderFor } from './event-recorder.ts';
import { instrumentedProcessor } from './instrumented-processor.ts';
import { processRequest } from './process-request.ts';

export interface ContainerWorkerOptions<T extends KubeObject = KubeObject, D = unknown> {
  controller: Controller<T, D>;
  config: Config;
  /** @defaultValue createKubeConfig(config.kube) */
  kubeConfig?: KubeConfig;
  logger?: Logger;
  /** Serve /healthz, /readyz and /metrics on config.http. @defaultValue true */
  http?: boolean;
  /** Aborting it while the worker waits for Redis at start makes the start reject with its reason, having closed what it opened. */
  signal?: AbortSignal;
}

export interface ContainerWorker {
  /** Where /healthz and /metrics are served, when they are. */
  url: string | undefined;
  registry: Registry;
  /** Not stopping, and Redis answers. */
  isReady(): boolean;
  setConcurrency(n: number): void;
  /**
   * Stops taking requests, lets running reconciles finish within `graceMs` (config.worker.shutdownGrace),
   * hands back the jobs of those that do not, then closes the controller's deps and every connection.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a worker. /healthz, /readyz and /metrics listen first (/readyz answers 503 while Redis is
 * unreachable); then it waits for Redis as long as it takes — logging one line per retry interval,
 * and giving up when `signal` aborts — runs the controller's `setup`, and resolves once the worker
 * takes requests. If any of that fails, what was opened is closed again before it rejects.
 */
export async function startContainerWorker<T extends KubeObject, D>(options: ContainerWorkerOptions<T, D>): Promise<ContainerWorker> {
  const { controller, config } = options;
  const logger = (options.logger ?? createLogger({ level: config.log.level, name: 'worker' })).child({ controller: controller.name });
  const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
  const registry = createMetricsRegistry();
  const metrics = reconcileMetrics(registry, controller.name);
  metrics.setMaxConcurrent(config.worker.concurrency);

  const connection: RedisConnection = createRedisConnection(config.redis, { logger });
  let deps: D | undefined;
  let queue: ReconcileQueue | undefined;
  let http: OpsServer | undefined;
  let closing = false;
  const closeDeps = () =>
    closeControllerDeps(deps, (error) => logger.warn({ err: errorMessage(error) }, 'closing the controller’s deps failed'));
  try {
    if (options.http ?? true) {
      http = await serveOps(config, registry, {
        live: () => !closing,
        ready: () => !closing && connection.status === 'ready',
      });
      logger.info({ url: http.url }, `serving /healthz /readyz /metrics on ${http.url}`);
    }
    await waitForRedis(connection, options.signal === undefined ? {} : { signal: options.signal });
    deps = controller.setup === undefined ? undefined : await controller.setup({ config, logger });
    const reconcileQueue = new ReconcileQueue(
      { controller: controller.name, redis: config.redis, queue: config.queue },
      { connection, logger },
    );
    queue = reconcileQueue;
    // A worker whose queue.partitions disagrees with the queue in Redis would wait where nothing arrives.
    await reconcileQueue.checkLayout();
    workqueueDepthGauge(registry, controller.name, async () => {
      const depth = await reconcileQueue.getDepth();
      return { total: depth.waiting + depth.prioritized + depth.delayedDue, lanes: depth.lanes };
    });
  } catch (error) {
    await closeDeps();
    await queue?.close();
    await http?.close();
    connection.disconnect();
    throw error;
  }
  const reconcileQueue = queue;

  const budget = RedisApiBudget.fromConfig(connection, config);
  const client = new KubeApiClient({
    kubeConfig,
    budget,
    fieldManager: fieldManagerOf(controller.name),
    resources: controllerResources(controller),
    onRequest: (verb, code, waitedMs) => metrics.apiRequest(verb, code, waitedMs / 1_000),
  });

  // Every write of a run is recorded so the watcher can tell its events from anyone else's.
  const ownWrites = new OwnWriteRecorder(connection, {
    prefix: config.redis.prefix,
    controller: controller.name,
    partitions: config.queue.partitions,
  });
  const events = eventRecorderFor(connection, config, controller.name);
  const instrumented = instrumentedProcessor(
    async (request) => {
      const started = Date.now();
      const fence = request.lockToken === undefined ? undefined : { jobId: request.jobId, token: request.lockToken };
      let panicked = false;
      const outcome = await processRequest(controller, request, {
        client: client.withWrites(ownWrites.forRun(fence)),
        logger,
        deps: deps as D,
        reconcileTimeoutMs: config.worker.reconcileTimeout,
        finalizeTimeoutMs: config.worker.finalizeTimeout,
        onPanic: () => {
          panicked = true;
        },
        events,
        attempts: config.queue.attempts,
      });
      return { outcome, durationMs: Date.now() - started, panicked };
    },
    { controller: controller.name, metrics, connection, redis: config.redis, attempts: config.queue.attempts, logger },
  );

  const worker: QueueWorker = startQueueWorker({
    controller: controller.name,
    redis: config.redis,
    queue: config.queue,
    concurrency: config.worker.concurrency,
    processor: (request) => instrumented.process(request),
    logger,
    connection,
    onBlockedChange: (blocked) => metrics.setBlocked(blocked),
  });

  logger.info({ concurrency: config.worker.concurrency, http: http?.url }, 'worker started');

  let closed: Promise<void> | undefined;
  return {
    url: http?.url,
    registry,
    isReady: () => !closing && connection.status === 'ready',
    setConcurrency(n) {
      worker.setConcurrency(n);
      metrics.setMaxConcurrent(n);
    },
    close(graceMs = config.worker.shutdownGrace) {
      closed ??= (async () => {
        closing = true;
        logger.info({ graceMs, active: instrumented.active() }, 'stopping: no new requests; waiting for running reconciles');
        await worker.close(graceMs);
        await instrumented.flush();
        await closeDeps();
        await reconcileQueue.close();
        await http?.close();
        await closeRedisConnection(connection);
        logger.info('worker stopped');
      })();
      return closed;
    },
  };
}

/**
 * /healthz, /readyz and /metrics of a worker or dispatcher process. Liveness holds while the process
 * runs (an unreachable Redis is no reason for the kubelet to restart it); readiness also needs Redis.
 */
export function serveOps(config: Config, registry: Registry, probes: { live: () => boolean; ready: () => boolean }): Promise<OpsServer> {
  return startOpsServer({
    host: config.http.host,
    port: config.http.port,
    health: () => (probes.live() ? { ok: true, body: 'ok\n' } : { ok: false, body: 'stopping\n' }),
    ready: () => (probes.ready() ? { ok: true, body: 'ok\n' } : { ok: false, body: probes.live() ? 'Redis unreachable\n' : 'stopping\n' }),
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  });
}
