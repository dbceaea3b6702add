// `conveyor demo`: the whole pipeline on one machine — private Redis, API simulator (or a cluster), watcher, workers, autoscaler — under churn, ending in a convergence check.

import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  type ConfigInput,
  closeRedisConnection,
  createLogger,
  createMetricsRegistry,
  createRedisConnection,
  KubeApiClient,
} from '@conveyor/shared';
import { LambdaEmulator } from '@conveyor/test/support/lambda-emulator';
import { redisServerBinary } from '@conveyor/test/support/redis-server';
import { buildWidgetArtifacts } from '@conveyor/test/support/widget-build';
import { Watcher, watcherSettingsFrom } from '@conveyor/watcher';
import { startAutoscaler } from '@conveyor/watcher/autoscaler/autoscaler';
import { DispatcherConcurrencyTarget } from '@conveyor/watcher/autoscaler/scale-targets';
import { type Dispatcher, startDispatcher } from '@conveyor/workers/lambda/dispatcher';
import widgets from '../controller.ts';
import { ExampleRecords } from '../example-records.ts';
import { WIDGETS } from '../widget-harness.ts';
import { type ChurnRecord, churn, emptyChurnRecord, inBatches, planWorkload, seed, widgetName } from './churn.ts';
import { type ConvergenceReport, checkConvergence } from './convergence.ts';
import { type DemoSnapshot, DemoStats } from './demo-stats.ts';
import { createDemoView, formatDropped } from './demo-view.ts';
import { type DemoWorld, startClusterWorld, startSimulatedWorld } from './demo-world.ts';
import { startManualApi } from './manual-api.ts';
import { LocalWorkerPool, reconcileCountsOf } from './worker-pool.ts';

export interface DemoOptions {
  /** Widgets to start with; the burst adds half as many. @defaultValue 2000 */
  objects: number;
  /** Most workers the autoscaler may run: container workers, or twice as many dispatcher slots with Lambda. */
  workers: number;
  lambda: boolean;
  /** A real cluster instead of the simulator. */
  kubeconfig: string | undefined;
  /** Keep churning after the script until `stop` aborts (Ctrl-C). */
  follow: boolean;
  stop?: AbortSignal;
  out: (text: string) => void;
  tty: boolean;
  /** Longest wait for the pipeline to settle after the churn. @defaultValue 90 s */
  settleTimeoutMs?: number;
}

export interface DemoResult {
  converged: boolean;
  /** Stopped (Ctrl-C, SIGTERM) before the churn script finished, without --follow. */
  interrupted: boolean;
  summary: DemoSnapshot;
  convergence: ConvergenceReport;
  churn: ChurnRecord;
}

/** The run was stopped before it could finish (Ctrl-C or SIGTERM without --follow). */
export class DemoInterrupted extends Error {
  constructor() {
    super('interrupted before the convergence check; everything it started has been stopped');
  }
}

const SLOTS_PER_WORKER = 10;
/** After an interruption: how long the pipeline may settle before the one convergence check. */
const INTERRUPTED_SETTLE_MS = 10_000;
// serverless.yml's service, its default stage (prod) and the function, as serverless-offline names it.
const LAMBDA_FUNCTION = 'conveyor-widgets-prod-reconcile';

function demoSettings(options: DemoOptions): ConfigInput {
  return {
    log: { level: 'error' },
    // With Lambda the dispatcher starts at one slot and follows the autoscaler's count.
    worker: { concurrency: options.lambda ? 1 : SLOTS_PER_WORKER, shutdownGrace: '5s' },
    queue: { backoff: { base: '200ms', max: '5s' } },
    // The simulator is local; a real cluster gets the default 50 qps shared by every worker.
    apiBudget: options.kubeconfig === undefined ? { qps: 5_000, burst: 1_000 } : { qps: 50, burst: 100 },
    autoscaler: {
      enabled: true,
      target: options.lambda ? 'dispatcher' : 'deployment',
      minWorkers: 1,
      // Each concurrent invocation in serverless-offline is a cold start (a worker thread loading the bundle), as in Lambda.
      maxWorkers: options.lambda ? options.workers * 2 : options.workers,
      latencyTarget: '3s',
      interval: '1s',
      scaleDownStabilization: '10s',
      defaultReconcile: '50ms',
      apiCallsPerReconcile: 5,
    },
    lambda: { functionTimeout: '30s' },
  };
}

/** Runs the demo; resolves with the summary and whether the convergence check held. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  // Before anything starts: a missing redis-server is the one thing a newcomer must fix by hand.
  redisServerBinary();
  const logger = createLogger({ level: 'error', name: 'demo' });
  const view = createDemoView(options.out, options.tty);
  const settings = demoSettings(options);
  const workload = planWorkload(options.objects);
  const cleanups: (() => Promise<unknown>)[] = [];
  // Without --follow, a stop (Ctrl-C, SIGTERM) ends the run at the next step, and everything started is stopped.
  const checkStop = () => {
    if (options.stop?.aborted === true && !options.follow) throw new DemoInterrupted();
  };
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error: unknown) => logger.warn({ err: String(error) }, 'cleanup step failed'));
    cleanups.length = 0;
  };

  try {
    view.note(
      `conveyor demo: ${options.objects} Widgets, ${workload.dependents.length} sharing a palette ConfigMap; workers ${options.lambda ? 'on Lambda (serverless-offline)' : 'in containers (in-process)'}`,
    );
    const world: DemoWorld =
      options.kubeconfig === undefined ? await startSimulatedWorld(settings) : await startClusterWorld(options.kubeconfig, settings);
    cleanups.push(() => world.close());
    const { config, client, namespace, queue } = world;
    view.note(`  where: ${world.describe}; Redis at ${config.redis.url} (private)`);

    view.note('  seeding…');
    const seededAt = Date.now();
    await seed(client, namespace, workload);
    view.note(`  seeded ${options.objects} Widgets and the palette in ${((Date.now() - seededAt) / 1_000).toFixed(1)}s`);

    // Workers: a local pool the autoscaler sizes, or the Lambda dispatcher whose slots it sizes.
    let pool: LocalWorkerPool | undefined;
    let dispatcher: Dispatcher | undefined;
    let manualCount = 0;
    const redisConnection = createRedisConnection(config.redis, { logger, purpose: 'demo' });
    cleanups.push(() => closeRedisConnection(redisConnection));
    if (options.lambda) {
      if (world.lambdaKube === undefined) throw new Error('--lambda runs against the simulator only');
      view.note('  bundling the Widget function (conveyor build) and starting serverless-offline with serverless.yml…');
      await buildWidgetArtifacts();
      const emulator = await LambdaEmulator.start('serverless.yml', {
        CONVEYOR_REDIS__URL: config.redis.url,
        CONVEYOR_REDIS__PREFIX: config.redis.prefix,
        CONVEYOR_KUBE__SERVER: world.lambdaKube.server,
        CONVEYOR_KUBE__TOKEN: world.lambdaKube.token,
        CONVEYOR_KUBE__INSECURE_SKIP_TLS_VERIFY: 'true',
        CONVEYOR_API_BUDGET__QPS: '5000',
        CONVEYOR_LOG__LEVEL: 'error',
      });
      cleanups.push(() => emulator.stop());
      const lambdaConfig = { ...config, lambda: { ...config.lambda, endpoint: emulator.endpoint } };
      // serverless-offline accepts any credentials; retries belong to the queue.
      const lambda = new LambdaClient({
        endpoint: emulator.endpoint,
        region: 'us-east-1',
        maxAttempts: 1,
        credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' },
      });
      const d = await startDispatcher({
        controller: 'widgets',
        functionName: LAMBDA_FUNCTION,
        config: lambdaConfig,
        lambda,
        logger,
        followIntervalMs: 500,
      });
      dispatcher = d;
      cleanups.push(async () => {
        await d.close(5_000);
        lambda.destroy();
      });
    } else {
      const p = new LocalWorkerPool(config, world.kubeConfig, logger);
      pool = p;
      cleanups.push(() => p.close());
    }

    const watcherRegistry = createMetricsRegistry();
    const autoscalerRegistry = createMetricsRegistry();
    const desired = async () => (await autoscalerRegistry.getSingleMetric('conveyor_desired_workers')?.get())?.values[0]?.value ?? 0;
    const stats = new DemoStats({
      queue,
      config,
      logger,
      watcherRegistry,
      reconcileCounts: async () =>
        pool !== undefined ? await pool.counts() : dispatcher !== undefined ? await reconcileCountsOf(dispatcher) : { total: 0, errors: 0 },
      workers: async () =>
        pool !== undefined
          ? { desired: await desired(), running: pool.size, label: `container workers (${SLOTS_PER_WORKER} slots each)` }
          : { desired: await desired(), running: dispatcher?.concurrency ?? 0, label: 'dispatcher slots (Lambda invocations at once)' },
      extraEnqueued: () => manualCount,
    });
    cleanups.push(() => stats.close());
    await stats.ready();

    const watcher = new Watcher({
      controller: widgets,
      transport: new KubeApiClient({ kubeConfig: world.kubeConfig }),
      queue,
      registry: watcherRegistry,
      logger: logger.child({ component: 'watcher' }),
      // The workers record their own writes; their events enqueue nothing (`own-write` in the dropped counts).
      ...watcherSettingsFrom(config, redisConnection, widgets.name),
    });
    await watcher.start();
    cleanups.push(() => watcher.stop(5_000));

    // The real autoscaler loop: depth and measured reconcile time → the pool's size, or the dispatcher's slots via Redis.
    const autoscaler = startAutoscaler({
      controller: widgets.name,
      config,
      depth: () => queue.getDepth(),
      connection: redisConnection,
      target: pool ?? new DispatcherConcurrencyTarget(redisConnection, config.redis, widgets.name, config.autoscaler.interval),
      registry: autoscalerRegistry,
      logger,
    });
    cleanups.push(async () => autoscaler.stop());

    // The manual-enqueue API, as the watcher serves it: bearer token, validation, reason `manual`.
    const api = await startManualApi(queue, logger, () => {
      manualCount += 1;
    });
    cleanups.push(() => api.close());

    let ticking = true;
    const tick = async () => {
      while (ticking) {
        // A figure that cannot be read this time (Redis busy) is shown next time.
        const snapshot = await stats.snapshot().catch(() => undefined);
        if (snapshot !== undefined && ticking) view.show(snapshot);
        await new Promise((resolve) => setTimeout(resolve, options.tty ? 250 : 500));
      }
    };
    const ticker = tick();
    cleanups.push(async () => {
      ticking = false;
      await ticker;
    });

    // A stop (Ctrl-C, SIGTERM) without --follow skips what is left of the script: the run still
    // settles briefly, checks convergence once and prints its summary, marked as interrupted.
    let record = emptyChurnRecord();
    let interrupted = false;
    try {
      stats.phase = 'initial sync';
      await Promise.race([watcher.waitReady(120_000), stopped(options.follow ? undefined : options.stop)]);
      await settled(queue, stats, 120_000, checkStop);
      checkStop();
      await churn(
        {
          client,
          namespace,
          wrote: (name, at) => stats.wrote(namespace, name, at),
          manualEnqueue: (name) => api.reconcile(namespace, name),
          phase: (name) => {
            stats.phase = name;
            view.note(`  churn: ${name}`);
          },
          pause: async () => {
            checkStop();
            await new Promise((resolve) => setTimeout(resolve, 750));
            checkStop();
          },
        },
        workload,
        record,
      );

      if (options.follow) {
        stats.phase = 'following (Ctrl-C to stop)';
        view.note('  following: a round of spec edits every 5 s until Ctrl-C');
        record = await follow(client, namespace, workload.objects, record, stats, options.stop);
      }
    } catch (error) {
      if (!(error instanceof DemoInterrupted)) throw error;
      interrupted = true;
      view.note('  interrupted: settling briefly, then checking convergence once (Ctrl-C again to quit at once)');
    }

    stats.phase = 'settling';
    await settled(
      queue,
      stats,
      interrupted ? INTERRUPTED_SETTLE_MS : (options.settleTimeoutMs ?? 90_000),
      interrupted ? () => {} : checkStop,
    );

    stats.phase = 'convergence check';
    const records = new ExampleRecords(redisConnection, config.redis.prefix);
    const deleted = new Set(record.deleted);
    const expectedLive = new Set<string>([
      ...Array.from({ length: workload.objects }, (_, i) => widgetName(i)).filter((n) => !deleted.has(n)),
      ...record.created,
    ]);
    let convergence = await checkConvergence({ client, records, namespace, expectedLive, deleted: record.deleted });
    const deadline = Date.now() + (interrupted ? 0 : 30_000);
    while (!convergence.holds && Date.now() < deadline) {
      checkStop();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      convergence = await checkConvergence({ client, records, namespace, expectedLive, deleted: record.deleted });
    }
    const summary = await stats.snapshot();
    view.show(summary);
    view.end();
    ticking = false;
    await ticker;

    for (const line of summaryLines(summary, convergence, record)) options.out(`${line}\n`);
    if (interrupted) options.out('interrupted before the churn script finished: the check above covers what was done until then\n');

    if (options.kubeconfig !== undefined) {
      // Our finalizer is on every Widget: delete them while workers still run, so the namespace can go.
      options.out(`deleting the demo's Widgets from ${namespace} (finalize runs for each)…\n`);
      await deleteAllWidgets(client, namespace);
    }
    return { converged: convergence.holds, interrupted, summary, convergence, churn: record };
  } finally {
    await cleanup();
  }
}

/** Rejects with DemoInterrupted when `stop` aborts (never resolves); a rejection nobody awaits any more is ignored. */
function stopped(stop: AbortSignal | undefined): Promise<never> {
  const promise = new Promise<never>((_, reject) => {
    if (stop === undefined) return;
    const fail = () => reject(new DemoInterrupted());
    if (stop.aborted) fail();
    else stop.addEventListener('abort', fail, { once: true });
  });
  promise.catch(() => undefined);
  return promise;
}

/** Resolves once nothing is waiting, delayed or running twice in a row and every churn write got its reconcile. */
async function settled(queue: DemoWorld['queue'], stats: DemoStats, timeoutMs: number, checkStop: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (Date.now() < deadline) {
    checkStop();
    const d = await queue.getDepth();
    const idle = d.waiting + d.prioritized + d.delayedDue + d.delayedLater + d.active === 0 && stats.unanswered === 0;
    quiet = idle ? quiet + 1 : 0;
    if (quiet >= 3) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function follow(
  client: DemoWorld['client'],
  namespace: string,
  objects: number,
  record: ChurnRecord,
  stats: DemoStats,
  stop: AbortSignal | undefined,
): Promise<ChurnRecord> {
  const deleted = new Set(record.deleted);
  let round = 0;
  while (stop?.aborted !== true) {
    round += 1;
    const names = Array.from({ length: Math.min(50, objects) }, (_, i) => widgetName((round * 53 + i * 7) % objects)).filter(
      (n) => !deleted.has(n),
    );
    for (const name of names) {
      const at = Date.now();
      await client.patch({ ...WIDGETS, namespace, name }, { type: 'merge', body: { spec: { size: 20_000 + round } } });
      stats.wrote(namespace, name, at);
    }
    record.specEdits += names.length;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      stop?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }
  return record;
}

/** Deletes every Widget in the namespace and waits (up to a minute) for the workers to finalize them. */
async function deleteAllWidgets(client: DemoWorld['client'], namespace: string): Promise<void> {
  const names = (await client.list(WIDGETS, namespace)).items.map((w) => w.metadata.name);
  await inBatches(names, (name) => client.delete({ ...WIDGETS, namespace, name }));
  const deadline = Date.now() + 60_000;
  while ((await client.list(WIDGETS, namespace, { limit: 1 })).items.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

function summaryLines(s: DemoSnapshot, c: ConvergenceReport, churnRecord: ChurnRecord): string[] {
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v)} ms`);
  return [
    '',
    `summary after ${s.elapsedS.toFixed(1)}s:`,
    `  events seen ${s.eventsSeen} (plus ${s.listed} list items), requests enqueued ${s.enqueued}, merged ${s.merged}, reconciles ${s.reconciles}, errors ${s.errors}, parked ${s.depth.parked}`,
    `  dropped by the watcher: ${formatDropped(s.dropped)}`,
    `  event→reconcile latency: p50 ${ms(s.latencyP50Ms)}, p99 ${ms(s.latencyP99Ms)} over ${s.latencySamples} writes`,
    `  churn: ${churnRecord.specEdits} spec edits, ${churnRecord.statusEdits} status-only edits, ${churnRecord.labelEdits} label edits, ${churnRecord.deleted.length} deletes, 2 palette edits, ${churnRecord.manual.length} manual enqueue, ${churnRecord.created.length} new Widgets`,
    `convergence: ${c.holds ? 'PASSED' : 'FAILED'} — ${c.converged}/${c.expectedLive} live Widgets at observedGeneration == generation with their child and external record; ${c.deletedGone}/${c.expectedDeleted} deleted Widgets gone with their records`,
    ...c.problems.map((p) => `  not converged: ${p}`),
  ];
}
