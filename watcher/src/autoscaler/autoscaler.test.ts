// The autoscaler on the simulator and a private Redis: a deep backlog scales a Deployment through its scale subresource.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  configSchema,
  createLogger,
  createMetricsRegistry,
  KubeApiClient,
  ReconcileQueue,
  readDesiredWorkers,
  recordReconcile,
  startQueueWorker,
  systemClock,
} from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { startAutoscaler } from './autoscaler.ts';
import { DeploymentScaleTarget, DispatcherConcurrencyTarget } from './scale-targets.ts';

const scalePatches = (sim: KubeSimulator) =>
  sim
    .counters()
    .entries.filter((e) => e.verb === 'patch' && e.resource.includes('deployments/scale'))
    .reduce((n, e) => n + e.count, 0);

describe('Autoscaler on queue depth', () => {
  let sim: KubeSimulator;
  let server: RedisServer;
  let redis: Redis;

  before(async () => {
    sim = await startKubeSimulator();
    server = await RedisServer.start();
    redis = new Redis(server.url);
    const kc = sim.kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'conveyor-system' } } });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: 'conveyor-system',
      body: {
        metadata: { name: 'conveyor-worker' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'w' } },
          template: { metadata: { labels: { app: 'w' } }, spec: { containers: [{ name: 'w', image: 'conveyor' }] } },
        },
      },
    });
  });
  after(async () => {
    redis.disconnect();
    await sim.close();
    await server.close();
  });

  it('scales a Deployment up for a 5,000-deep backlog, back to min after stabilisation, and to zero after idle', async () => {
    const config = configSchema.parse({
      redis: { url: server.url, prefix: 'as1' },
      worker: { concurrency: 10 },
      apiBudget: { qps: 10_000 },
      autoscaler: {
        enabled: true,
        minWorkers: 1,
        maxWorkers: 50,
        latencyTarget: '30s',
        interval: '1h', // ticks are driven by the test
        scaleDownStabilization: '2s',
        idleToZero: '5s',
      },
    });
    const queue = new ReconcileQueue({ controller: 'widgets', redis: config.redis, queue: config.queue });
    const registry = createMetricsRegistry();
    // The test moves time itself, so stabilisation and idle windows do not depend on how busy the machine is.
    let clock = Date.now();
    const autoscaler = startAutoscaler({
      controller: 'widgets',
      config,
      depth: () => queue.getDepth(),
      connection: redis,
      target: new DeploymentScaleTarget(new KubeApiClient({ kubeConfig: sim.kubeConfig() }), config.autoscaler.deployment),
      registry,
      logger: createLogger({ level: 'silent' }),
      clock: { ...systemClock, now: () => clock },
    });
    const apps = sim.kubeConfig().makeApiClient(AppsV1Api);
    const replicas = async () =>
      (await apps.readNamespacedDeploymentScale({ name: 'conveyor-worker', namespace: 'conveyor-system' })).spec?.replicas;
    try {
      await queue.enqueueBatch(Array.from({ length: 5_000 }, (_, i) => ({ key: widgetKey(`w-${i}`), reason: 'event' as const })));
      // Workers measured 200 ms per reconcile: 5,000 × 0.2 s / (30 s × 10) = 3.33 → 4 workers.
      for (let i = 0; i < 5; i += 1) await recordReconcile(redis, config.redis, 'widgets', 200, false, clock);
      const before = scalePatches(sim);
      const up = await autoscaler.tick();
      assert.deepEqual([up?.desired, up?.reason], [4, 'latency']);
      assert.equal(scalePatches(sim), before + 1, 'one PATCH of deployments/scale');
      assert.equal(await replicas(), 4);
      assert.match(await registry.metrics(), /conveyor_backlog\{controller="widgets"\} 5000/);
      assert.match(await registry.metrics(), /conveyor_desired_workers\{controller="widgets"\} 4/);

      // Drain the queue with a worker that reconciles instantly.
      const worker = startQueueWorker({
        controller: 'widgets',
        redis: config.redis,
        queue: config.queue,
        concurrency: 50,
        processor: async () => ({ kind: 'done' }),
      });
      try {
        await waitFor('a drained queue', async () => {
          await autoscaler.tick(); // as the loop would, every interval
          const d = await queue.getDepth();
          return d.waiting + d.prioritized + d.active === 0;
        });
      } finally {
        await worker.close(1_000);
      }
      // Still inside the window: held at the highest recent recommendation (the drain itself kept 50 slots busy).
      const held = await autoscaler.tick();
      assert.deepEqual([held?.reason, (held?.desired ?? 0) >= 4], ['stabilizing', true]);
      clock += 2_100;
      const down = await autoscaler.tick();
      assert.deepEqual([down?.desired, down?.reason], [1, 'min']);
      assert.equal(await replicas(), 1);
      clock += 3_000;
      const zero = await autoscaler.tick();
      assert.deepEqual([zero?.desired, zero?.reason], [0, 'idle']);
      assert.equal(await replicas(), 0);
      const patches = scalePatches(sim);
      await autoscaler.tick();
      assert.equal(scalePatches(sim), patches, 'no write when nothing changes');
    } finally {
      autoscaler.stop();
      await queue.close();
    }
  });

  it('publishes the dispatcher’s concurrency for Lambda, one slot per in-flight invocation', async () => {
    const config = configSchema.parse({
      redis: { url: server.url, prefix: 'as2' },
      apiBudget: { qps: 10_000 },
      autoscaler: { enabled: true, target: 'dispatcher', maxWorkers: 500, latencyTarget: '10s', interval: '1h' },
    });
    const queue = new ReconcileQueue({ controller: 'widgets', redis: config.redis, queue: config.queue });
    const autoscaler = startAutoscaler({
      controller: 'widgets',
      config,
      depth: () => queue.getDepth(),
      connection: redis,
      target: new DispatcherConcurrencyTarget(redis, config.redis, 'widgets', 60_000),
      registry: createMetricsRegistry(),
      logger: createLogger({ level: 'silent' }),
    });
    try {
      await queue.enqueueBatch(Array.from({ length: 1_000 }, (_, i) => ({ key: widgetKey(`l-${i}`), reason: 'event' as const })));
      for (let i = 0; i < 5; i += 1) await recordReconcile(redis, config.redis, 'widgets', 500, false);
      // 1,000 × 0.5 s / 10 s = 50 slots.
      assert.equal((await autoscaler.tick())?.desired, 50);
      assert.equal(await readDesiredWorkers(redis, config.redis, 'widgets'), 50);
    } finally {
      autoscaler.stop();
      await queue.close();
    }
  });

  it('with no target (the built-in autoscaler off) exports the backlog and the desired count, and acts on nothing', async () => {
    const config = configSchema.parse({ redis: { url: server.url, prefix: 'as4' }, autoscaler: { enabled: false, interval: '1h' } });
    const queue = new ReconcileQueue({ controller: 'widgets', redis: config.redis, queue: config.queue });
    const registry = createMetricsRegistry();
    await queue.enqueueBatch(Array.from({ length: 250 }, (_, i) => ({ key: widgetKey(`k-${i}`), reason: 'event' as const })));
    sim.resetCounters();
    const autoscaler = startAutoscaler({
      controller: 'widgets',
      config,
      depth: () => queue.getDepth(),
      connection: redis,
      target: undefined,
      registry,
      logger: createLogger({ level: 'silent' }),
    });
    try {
      assert.equal((await autoscaler.tick())?.desired, 1);
      const text = await registry.metrics();
      assert.match(text, /^conveyor_backlog\{controller="widgets"\} 250$/m);
      assert.match(text, /^conveyor_desired_workers\{controller="widgets"\} 1$/m);
      assert.equal(scalePatches(sim), 0);
      // Nothing published either: a dispatcher would follow a published count.
      assert.equal(await readDesiredWorkers(redis, config.redis, 'widgets'), undefined);
    } finally {
      autoscaler.stop();
      await queue.close();
    }
  });

  it('keeps going when the target cannot be scaled, and counts the failure', async () => {
    const config = configSchema.parse({
      redis: { url: server.url, prefix: 'as3' },
      autoscaler: { enabled: true, deployment: 'conveyor-system/missing', interval: '1h' },
    });
    const queue = new ReconcileQueue({ controller: 'widgets', redis: config.redis, queue: config.queue });
    const registry = createMetricsRegistry();
    const autoscaler = startAutoscaler({
      controller: 'widgets',
      config,
      depth: () => queue.getDepth(),
      connection: redis,
      target: new DeploymentScaleTarget(new KubeApiClient({ kubeConfig: sim.kubeConfig() }), config.autoscaler.deployment),
      registry,
      logger: createLogger({ level: 'silent' }),
    });
    try {
      assert.equal(await autoscaler.tick(), undefined);
      assert.match(await registry.metrics(), /conveyor_autoscaler_failures_total\{controller="widgets"\} [1-9]/);
    } finally {
      autoscaler.stop();
      await queue.close();
    }
  });
});
