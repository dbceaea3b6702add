// `conveyor dispatch`: a queue worker in the cluster whose processor invokes the reconcile function in AWS Lambda.
//
// Expected flow: take a request from the controller's queue → InvokeCommand (RequestResponse) with the
// request → apply the Outcome the function returned through the queue module, exactly as a container
// worker would.
// Guarantees:
// - The job's lock outlives the invocation: BullMQ renews it every lockDuration/2 while the invoke is
//   awaited, and the dispatcher waits for the function's own timeout plus a margin before it gives up,
//   so it never abandons an invocation that is still running. A dispatcher that dies mid-invoke stops
//   renewing; the request runs again after lockDuration + stalledInterval, and the overlap with the
//   orphaned invocation is caught by the resourceVersion guard on every write (409, retried).
// - FunctionError and timeouts back off per key; TooManyRequestsException pauses the whole queue for
//   its Retry-After without using an attempt; connection errors retry. Nothing is dropped.
// - Its concurrency follows the autoscaler's published desired count (Redis), polled every few seconds.
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  ATTR,
  type Config,
  closeRedisConnection,
  createLogger,
  createMetricsRegistry,
  createRedisConnection,
  errorMessage,
  failSpan,
  inSpan,
  type Logger,
  METRIC,
  type OpsServer,
  type QueueWorker,
  ReconcileQueue,
  type RedisConnection,
  type RequestContext,
  readDesiredWorkers,
  reconcileMetrics,
  SPAN,
  startQueueWorker,
  traceparentOf,
  waitForRedis,
  workqueueDepthGauge,
} from '@conveyor/shared';
import { SpanKind } from '@opentelemetry/api';
import { Counter, Histogram, type Registry } from 'prom-client';
import { serveOps } from '../container-worker.ts';
import { instrumentedProcessor } from '../instrumented-processor.ts';
import { type Invocation, type InvocationResult, invokeReconcile } from './invoke.ts';
import { encodeLambdaRequest } from './lambda-request.ts';

export interface DispatcherOptions {
  /** The controller's name: its queue. */
  controller: string;
  functionName: string;
  config: Config;
  /** @defaultValue a LambdaClient for config.lambda (region, endpoint), with the SDK's own retries off */
  lambda?: LambdaClient;
  logger?: Logger;
  registry?: Registry;
  /** How often to read the autoscaler's desired concurrency. @defaultValue 5 s */
  followIntervalMs?: number;
  /** Serve /healthz, /readyz and /metrics on config.http. @defaultValue false */
  http?: boolean;
  /** Aborting it while the dispatcher waits for Redis at start makes the start reject with its reason, having closed what it opened. */
  signal?: AbortSignal;
}

export interface Dispatcher {
  registry: Registry;
  /** Where /healthz and /metrics are served, when they are. */
  url: string | undefined;
  readonly concurrency: number;
  /** Not stopping, and Redis answers. */
  isReady(): boolean;
  setConcurrency(n: number): void;
  close(graceMs?: number): Promise<void>;
}

/** Margin over the function's timeout before the dispatcher stops waiting for an answer. */
const INVOKE_MARGIN_MS = 5_000;
const RESULTS: readonly InvocationResult[] = ['ok', 'function-error', 'throttled', 'blocked', 'timeout', 'transport-error', 'bad-response'];

export function createLambdaClient(config: Config): LambdaClient {
  // Retries belong to the queue (per-key backoff, queue-wide pause), not to the SDK.
  return new LambdaClient({
    region: config.lambda.region,
    maxAttempts: 1,
    ...(config.lambda.endpoint === undefined ? {} : { endpoint: config.lambda.endpoint }),
  });
}

/** One invocation in a `conveyor.lambda.invoke` span, whose trace context the request carries: the function's reconcile is its child. */
async function invokeTraced(
  lambda: LambdaClient,
  functionName: string,
  request: RequestContext & { controller: string },
  timeoutMs: number,
): Promise<Invocation> {
  return await inSpan(SPAN.lambdaInvoke, { kind: SpanKind.CLIENT, attributes: { [ATTR.functionName]: functionName } }, async (span) => {
    const trace = traceparentOf(span) ?? request.trace;
    const payload = encodeLambdaRequest({ ...request, ...(trace === undefined ? {} : { trace }) });
    const invocation = await invokeReconcile(lambda, functionName, payload, timeoutMs);
    if (invocation.result !== 'ok') failSpan(span, invocation.result);
    return invocation;
  });
}

export async function startDispatcher(options: DispatcherOptions): Promise<Dispatcher> {
  const { config, functionName, controller } = options;
  const logger = (options.logger ?? createLogger({ level: config.log.level, name: 'dispatcher' })).child({
    controller,
    function: functionName,
  });
  const lambda = options.lambda ?? createLambdaClient(config);
  const invokeTimeoutMs = config.lambda.functionTimeout + INVOKE_MARGIN_MS;
  const connection: RedisConnection = createRedisConnection(config.redis, { logger });

  const registry = options.registry ?? createMetricsRegistry();
  const metrics = reconcileMetrics(registry, controller);
  const invocations = new Counter({
    name: METRIC.lambdaInvocationsTotal,
    help: 'Lambda invocations by how they ended: ok, function-error, throttled, blocked, timeout, transport-error, bad-response.',
    labelNames: ['controller', 'function', 'result'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: METRIC.lambdaInvokeDurationSeconds,
    help: 'Time from InvokeCommand to its answer.',
    labelNames: ['controller', 'function'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
    registers: [registry],
  });
  for (const result of RESULTS) invocations.inc({ controller, function: functionName, result }, 0);

  let concurrency = config.worker.concurrency;
  metrics.setMaxConcurrent(concurrency);
  // The same workqueue_depth a container worker exports, so a dashboard reads the same series whichever runs the reconciles.
  const queue = new ReconcileQueue({ controller, redis: config.redis, queue: config.queue }, { connection, logger });
  workqueueDepthGauge(registry, controller, async () => {
    const depth = await queue.getDepth();
    return { total: depth.waiting + depth.prioritized + depth.delayedDue, lanes: depth.lanes };
  });

  let closing = false;
  let http: OpsServer | undefined;
  try {
    if (options.http === true) {
      http = await serveOps(config, registry, { live: () => !closing, ready: () => !closing && connection.status === 'ready' });
      logger.info({ url: http.url }, `serving /healthz /readyz /metrics on ${http.url}`);
    }
    // Redis may be away at start: wait (one log line per retry interval) until it answers or the process is told to stop.
    await waitForRedis(connection, options.signal === undefined ? {} : { signal: options.signal });
    // A dispatcher whose queue.partitions disagrees with the queue in Redis would wait where nothing arrives.
    await queue.checkLayout();
  } catch (error) {
    await http?.close();
    await queue.close();
    connection.disconnect();
    if (options.lambda === undefined) lambda.destroy();
    throw error;
  }

  const instrumented = instrumentedProcessor(
    async (request) => {
      const invocation = await invokeTraced(lambda, functionName, { ...request, controller }, invokeTimeoutMs);
      invocations.inc({ controller, function: functionName, result: invocation.result });
      duration.observe({ controller, function: functionName }, invocation.durationMs / 1_000);
      // A blocked queue is logged once by the queue (queue-block.ts), not once per request.
      if (invocation.result !== 'ok' && invocation.result !== 'blocked')
        logger.warn({ jobId: request.jobId, result: invocation.result, outcome: invocation.outcome }, 'invocation did not succeed');
      const telemetry = invocation.telemetry;
      for (const { verb, code, count } of telemetry?.api ?? []) metrics.apiRequests(verb, code, count);
      for (const waitedMs of telemetry?.budgetWaitMs ?? []) metrics.budgetWaited(waitedMs / 1_000);
      return { outcome: invocation.outcome, durationMs: invocation.durationMs, panicked: telemetry?.panicked === true };
    },
    { controller, metrics, connection, redis: config.redis, attempts: config.queue.attempts, logger },
  );

  const worker: QueueWorker = startQueueWorker({
    controller,
    redis: config.redis,
    queue: config.queue,
    concurrency,
    processor: (request) => instrumented.process(request),
    logger,
    connection,
    onBlockedChange: (blocked) => metrics.setBlocked(blocked),
  });
  logger.info(
    { concurrency, invokeTimeoutMs, lockDuration: config.queue.lockDuration },
    'dispatcher started; locks are renewed while invoking',
  );

  const setConcurrency = (n: number): void => {
    const next = Math.max(1, Math.floor(n));
    if (next === concurrency) return;
    logger.info({ from: concurrency, to: next }, 'concurrency changed');
    concurrency = next;
    worker.setConcurrency(next);
    metrics.setMaxConcurrent(next);
  };

  // The autoscaler publishes how many slots it wants; 0 (scaled to zero) keeps one slot, so a request that arrives still starts.
  const follow = setInterval(() => {
    readDesiredWorkers(connection, config.redis, controller).then(
      (desired) => {
        if (desired !== undefined) setConcurrency(Math.max(1, desired));
      },
      (error: unknown) => logger.warn({ err: errorMessage(error) }, 'cannot read the desired concurrency'),
    );
  }, options.followIntervalMs ?? 5_000);
  follow.unref();

  let closed: Promise<void> | undefined;
  return {
    registry,
    url: http?.url,
    get concurrency() {
      return concurrency;
    },
    isReady: () => !closing && connection.status === 'ready',
    setConcurrency,
    close(graceMs = config.worker.shutdownGrace) {
      closed ??= (async () => {
        closing = true;
        clearInterval(follow);
        logger.info({ graceMs, active: instrumented.active() }, 'stopping: no new requests; waiting for running invocations');
        await worker.close(graceMs);
        await instrumented.flush();
        await queue.close();
        await http?.close();
        await closeRedisConnection(connection);
        if (options.lambda === undefined) lambda.destroy();
        logger.info('dispatcher stopped');
      })();
      return closed;
    },
  };
}
