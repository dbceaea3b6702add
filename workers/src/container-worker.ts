// The container runtime: a queue worker running one controller's reconciles, with the shared API budget, metrics, health, and graceful shutdown.

import {
  type Config,
  createKubeConfig,
  createLogger,
  createMetricsRegistry,
  createRedisConnection,
  errorMessage,
  type KubeObject,
  type Logger,
  type Outcome,
  type QueueWorker,
  ReconcileQueue,
  RedisApiBudget,
  type RedisConnection,
  type RequestContext,
  reconcileMetrics,
  startQueueWorker,
  workqueueDepthGauge,
} from '@conveyor/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { type HttpEndpoints, startHttpEndpoints } from './http-endpoints.ts';
import { BudgetedKubeClient } from './kube-client.ts';
import { processRequest } from './process-request.ts';
import type { Controller } from './reconciler.ts';

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

/** Starts a worker. Resolves once the controller's `setup` ran and the worker takes requests. */
export async function startContainerWorker<T extends KubeObject, D>(options: ContainerWorkerOptions<T, D>): Promise<ContainerWorker> {
  const { controller, config } = options;
  const logger = (options.logger ?? createLogger({ level: config.log.level, name: 'worker' })).child({ controller: controller.name });
  const kubeConfig = options.kubeConfig ?? createKubeConfig(config.kube);
  const connection: RedisConnection = createRedisConnection(config.redis);
  connection.on('error', (error: unknown) => logger.warn({ err: errorMessage(error) }, 'redis connection error'));

  const registry = createMetricsRegistry();
  const metrics = reconcileMetrics(registry, controller.name);
  metrics.setMaxConcurrent(config.worker.concurrency);
  const queue = new ReconcileQueue({ controller: controller.name, redis: config.redis, queue: config.queue }, { connection, logger });
  workqueueDepthGauge(registry, controller.name, async () => {
    const depth = await queue.getDepth();
    return depth.waiting + depth.prioritized + depth.delayedDue;
  });

  const budget = RedisApiBudget.fromConfig(connection, config);
  const client = new BudgetedKubeClient({
    kubeConfig,
    budget,
    onRequest: (code, waitedMs) => metrics.apiRequest(code, waitedMs / 1_000),
  });

  let deps: D;
  try {
    deps = controller.setup === undefined ? (undefined as D) : await controller.setup({ config, logger });
  } catch (error) {
    connection.disconnect();
    throw error;
  }

  let active = 0;
  const processor = async (request: RequestContext): Promise<Outcome> => {
    active += 1;
    metrics.setActive(active);
    const started = Date.now();
    try {
      const outcome = await processRequest(controller, request, {
        client,
        logger,
        deps,
        reconcileTimeoutMs: config.worker.reconcileTimeout,
        finalizeTimeoutMs: config.worker.finalizeTimeout,
      });
      metrics.observe(outcome, (Date.now() - started) / 1_000, (started - request.enqueuedAt) / 1_000, request.attempt);
      return outcome;
    } finally {
      active -= 1;
      metrics.setActive(active);
    }
  };

  const worker: QueueWorker = startQueueWorker({
    controller: controller.name,
    redis: config.redis,
    queue: config.queue,
    concurrency: config.worker.concurrency,
    processor,
    logger,
    connection,
  });

  let closing = false;
  let http: HttpEndpoints | undefined;
  if (options.http ?? true) {
    http = await startHttpEndpoints({
      host: config.http.host,
      port: config.http.port,
      registry,
      healthy: () => !closing && connection.status === 'ready',
    });
  }
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
        logger.info({ graceMs, active }, 'stopping: no new requests; waiting for running reconciles');
        await worker.close(graceMs);
        const closable = deps as { close?: () => unknown } | undefined;
        if (typeof closable?.close === 'function') {
          await Promise.resolve(closable.close()).catch((error: unknown) =>
            logger.warn({ err: errorMessage(error) }, 'closing the controller’s deps failed'),
          );
        }
        await queue.close();
        await http?.close();
        await connection.quit().catch(() => connection.disconnect());
        logger.info('worker stopped');
      })();
      return closed;
    },
  };
}
