// B6 API load: API requests per reconcile of the example Widget controller, and the QPS four workers put on the API server against the shared budget.
import { startContainerWorker } from '@conveyor/workers/container-worker';
import widgets from '../../../examples/widgets/controller.ts';
import { reconcileCountsOf } from '../../../examples/widgets/demo/worker-pool.ts';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import { atMost, bySize, Cleanups, createWidgets, round, type Scenario, silentLogger, simCreate, until } from '../bench-support.ts';

export const apiLoad: Scenario = async ({ size, log }) => {
  const objects = bySize(size, { tiny: 20, default: 150, large: 1_000 });
  const qps = bySize(size, { tiny: 200, default: 100, large: 100 });
  const burst = 20;
  const workers = 4;
  const cleanups = new Cleanups();
  try {
    const world = await startWidgetWorld({
      log: { level: 'error' },
      apiBudget: { qps, burst },
      worker: { concurrency: 10 },
    });
    cleanups.add(() => world.close());
    log(`B6: ${objects} Widgets, ${workers} workers sharing ${qps} qps (burst ${burst})`);
    const names = await createWidgets(simCreate(world.sim), objects);
    const started = await Promise.all(
      Array.from({ length: workers }, () =>
        startContainerWorker({
          controller: widgets,
          config: world.config,
          kubeConfig: world.sim.kubeConfig(),
          logger: silentLogger,
          http: false,
        }),
      ),
    );
    for (const w of started) cleanups.add(() => w.close(5_000));
    world.sim.resetCounters();
    const t0 = performance.now();
    await world.enqueue(names.map((name) => ({ group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name })));
    const reconciles = async () => (await Promise.all(started.map((w) => reconcileCountsOf(w)))).reduce((s, c) => s + c.total, 0);
    const idle = async () => {
      const d = await world.queue.getDepth();
      return d.waiting + d.prioritized + d.delayedDue + d.delayedLater + d.active === 0;
    };
    await until('every Widget reconciled and the queue empty', async () => (await reconciles()) >= objects && (await idle()), 300_000, 50);
    const elapsedS = (performance.now() - t0) / 1000;
    const counters = world.sim.counters();
    const total = await reconciles();
    const requests = counters.total;
    const perReconcile = requests / total;
    const observed = requests / elapsedS;
    const allowed = qps * elapsedS + burst;
    const errors = (await Promise.all(started.map((w) => reconcileCountsOf(w)))).reduce((s, c) => s + c.errors, 0);
    log(`B6: ${requests} API requests for ${total} reconciles in ${elapsedS.toFixed(1)} s`);
    return {
      id: 'B6',
      title: 'API load',
      setup: `${objects} new Widgets reconciled by the example controller (examples/widgets/controller.ts) in ${workers} container workers × 10 slots sharing an API budget of ${qps} qps, burst ${burst}; requests counted by the simulator`,
      figure: { label: 'observed API QPS', value: round(observed, 1), unit: 'req/s' },
      reference: { label: 'configured budget', value: qps, unit: 'req/s' },
      ratio: round(observed / qps, 3),
      // A limit that depends on the run's duration: judged as requests / allowed ≤ 1, so that a median means something.
      goal: {
        text: 'requests ≤ qps × time + burst = {allowedRequests}',
        checks: [atMost('requests / (qps × time + burst)', round(requests / allowed, 3), 1)],
      },
      details: {
        reconciles: total,
        reconcileErrors: errors,
        apiRequests: requests,
        allowedRequests: Math.round(allowed),
        // Every Widget is new and reconciled once (a retry would show as reconcileErrors): its first reconcile's cost.
        apiRequestsPerFirstReconcile: round(requests / objects, 2),
        apiRequestsPerReconcile: round(perReconcile, 2),
        ...Object.fromEntries(Object.entries(counters.byVerb).map(([verb, n]) => [`requests.${verb}`, n])),
        seconds: round(elapsedS, 1),
      },
      chart: {
        title: `B6: API requests per second, ${workers} workers`,
        unit: 'req/s',
        bars: [
          { label: 'budget qps', value: qps },
          { label: 'observed', value: round(observed, 1) },
        ],
      },
      notes: [
        'A first reconcile of a new Widget takes {apiRequestsPerFirstReconcile} requests: it reads the Widget, adds the finalizer, applies its child ConfigMap (one request, created or not, nothing read first) and applies status once. A later reconcile of an unchanged Widget needs two (the read and a child apply that changes nothing); B8 has the cost of each kind of change.',
      ],
    };
  } finally {
    await cleanups.run();
  }
};
