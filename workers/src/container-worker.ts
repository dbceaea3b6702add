// The container runtime: a queue worker running one controller's reconciles, with the shared API budget, metrics, health, and graceful shutdown.

import {
  type Config,
  type Controller,
  closeControllerDeps,
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
  workqueueDepthGauge,
} from '@conveyor/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { instrumentedProcessor } from './instrumented-processor.ts';
import { processRequest } from './process-request.ts';

export interface ContainerWorkerOptions<T extends KubeObject = KubeObject, D = unknown> {
  controller: Controller<T, D>;
  config: Config;
  /** @defaultValue createKubeConfig(config.kube) */
  kubeConfig?: KubeConfig;
  logger?: Logger;
  /** Serve /healthz and /metrics on config.http. @defaultValue true */
  http?: boolean;
}

export interface ContainerWorker {
  /** Where /healthz and /metrics are served, when they are. */
  url: string | undefined;
  registry: Registry;
  setConcurrency(n: number): void;
  /**
   * Stops taking requests, lets running reconciles finish within `graceMs` (config.worker.shutdownGrace),
   * hands back the jobs of those that do not, then closes the controller's deps and every connection.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a worker. Resolves once the controller's `setup` ran, /healthz and /metrics listen, and the
 * worker takes requests; if any of that fails, what was opened is closed again before it rejects.
 */
export async function startContainerWorker<T extends KubeObject, D>(options: ContainerWorkerOptions<T, D>): Promise<ContainerWorker> {
  const { controller, config } = options;
  const logger = (options.logger ?? createLogger({ level: config.log.level, name: 'worker' })).child({ controller: controller.name });
  const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
  const registry = createMetricsRegistry();
  const metrics = reconcileMetrics(registry, controller.name);
  metrics.setMaxConcurrent(config.worker.concurrency);

  const connection: RedisConnection = createRedisConnection(config.redis);
  connection.on('error', (error: unknown) => logger.warn({ err: errorMessage(error) }, 'redis connection error'));
  let deps: D | undefined;
  let queue: ReconcileQueue | undefined;
  let http: OpsServer | undefined;
  let closing = false;
  const closeDeps = () =>
    closeControllerDeps(deps, (error) => logger.warn({ err: errorMessage(error) }, 'closing the controller’s deps failed'));
  try {
    deps = controller.setup === undefined ? undefined : await controller.setup({ config, logger });
    const reconcileQueue = new ReconcileQueue(
      { controller: controller.name, redis: config.redis, queue: config.queue },
      { connection, logger },
    );
    queue = reconcileQueue;
    workqueueDepthGauge(registry, controller.name, async () => {
      const depth = await reconcileQueue.getDepth();
      return { total: depth.waiting + depth.prioritized + depth.delayedDue, lanes: depth.lanes };
    });
    if (options.http ?? true) http = await serveOps(config, registry, () => !closing && connection.status === 'ready');
  } catch (error) {
    await closeDeps();
    await queue?.close().catch(() => undefined);
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
    onRequest: (code, waitedMs) => metrics.apiRequest(code, waitedMs / 1_000),
  });

  // Every write of a run is recorded so the watcher can tell its events from anyone else's.
  const ownWrites = new OwnWriteRecorder(connection, { prefix: config.redis.prefix, controller: controller.name });
  const instrumented = instrumentedProcessor(
    async (request) => {
      const started = Date.now();
      const fence = request.lockToken === undefined ? undefined : { jobId: request.jobId, token: request.lockToken };
      const outcome = await processRequest(controller, request, {
        client: client.withWrites(ownWrites.forRun(fence)),
        logger,
        deps: deps as D,
        reconcileTimeoutMs: config.worker.reconcileTimeout,
        finalizeTimeoutMs: config.worker.finalizeTimeout,
      });
      return { outcome, durationMs: Date.now() - started };
    },
    { controller: controller.name, metrics, connection, redis: config.redis, logger },
  );

  const worker: QueueWorker = startQueueWorker({
    controller: controller.name,
    redis: config.redis,
    queue: config.queue,
    concurrency: config.worker.concurrency,
    processor: (request) => instrumented.process(request),
    logger,
    connection,
  });

  logger.info({ concurrency: config.worker.concurrency, http: http?.url }, 'worker started');

  let closed: Promise<void> | undefined;
  return {
    url: http?.url,
    registry,
    setConcurrency(n) {
      worker.setConcurrency(n);
      metrics.setMaxConcurrent(n);
    },
    close(graceMs = config.worker.shutdownGrace) {
      closed ??= (async () => {
        closing = true;
        logger.info({ graceMs, active: instrumented.active() }, 'stopping: no new requests; waiting for running reconciles');
        await worker.close(graceMs);
        await closeDeps();
        await reconcileQueue.close();
        await http?.close();
        await connection.quit().catch(() => connection.disconnect());
        logger.info('worker stopped');
      })();
      return closed;
    },
  };
}

/** /healthz, /readyz and /metrics of a worker or dispatcher process. */
export function serveOps(config: Config, registry: Registry, healthy: () => boolean): Promise<OpsServer> {
  const probe = () => (healthy() ? { ok: true, body: 'ok\n' } : { ok: false, body: 'unhealthy\n' });
  return startOpsServer({
    host: config.http.host,
    port: config.http.port,
    health: probe,
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  });
}
