// Several controllers in one deployment, as users run them: one watcher and one worker process serving widgets and gadgets
// on the simulator and a private Redis — converging under churn, and a burst on one not starving the other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatKey, keyOf, type ObjectKey, ReconcileQueue, type ResourceRef } from '@conveyor/shared';
import { startTestEnv, type TestEnv } from '@conveyor/test';
import controllers, { GADGETS, type Item, starts, timing, WIDGETS } from '../fixtures/two-controllers.ts';

const item = (kind: 'Widget' | 'Gadget', name: string, size: number) => ({
  apiVersion: 'example.com/v1',
  kind,
  metadata: { name, namespace: 'default' },
  spec: { size },
});

/** The nearest-rank percentile of `values`. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

describe('Several controllers in one deployment: one watcher and one worker process serve widgets and gadgets', () => {
  let env: TestEnv;

  before(async () => {
    env = await startTestEnv({
      controller: controllers,
      crds: [new URL('../../examples/widgets/widget-crd.yaml', import.meta.url), new URL('../fixtures/gadget-crd.yaml', import.meta.url)],
      // Two slots each: the process's 4 split by equal shares.
      settings: { 'worker.concurrency': 4, 'apiBudget.qps': 100_000, 'apiBudget.burst': 10_000 },
    });
  });
  after(async () => {
    await env?.close();
  });

  /** Every object of `resource` has its status caught up with its spec; the names left are `names`. */
  async function converged(resource: ResourceRef, names: ReadonlySet<string>): Promise<boolean> {
    const list = await env.client.list<Item>(resource, 'default');
    if (list.items.length !== names.size) return false;
    return list.items.every((o) => names.has(o.metadata.name) && o.status?.observedGeneration === o.metadata.generation);
  }

  it('converges both under churn: creates, spec edits and deletes (through the gadgets finalizer) on each', async () => {
    const live = { widgets: new Set<string>(), gadgets: new Set<string>() };
    for (let i = 0; i < 40; i += 1) {
      await env.client.create(WIDGETS, item('Widget', `w-${i}`, i));
      live.widgets.add(`w-${i}`);
      await env.client.create(GADGETS, item('Gadget', `g-${i}`, i));
      live.gadgets.add(`g-${i}`);
    }
    // Churn while the first reconciles run: edit half of each, delete a quarter, create more.
    for (let i = 0; i < 40; i += 2) {
      await env.client.patch({ ...WIDGETS, namespace: 'default', name: `w-${i}` }, { type: 'merge', body: { spec: { size: 100 + i } } });
      await env.client.patch({ ...GADGETS, namespace: 'default', name: `g-${i}` }, { type: 'merge', body: { spec: { size: 100 + i } } });
    }
    for (let i = 1; i < 40; i += 4) {
      await env.client.delete({ ...WIDGETS, namespace: 'default', name: `w-${i}` });
      live.widgets.delete(`w-${i}`);
      await env.client.delete({ ...GADGETS, namespace: 'default', name: `g-${i}` });
      live.gadgets.delete(`g-${i}`);
    }
    for (let i = 40; i < 50; i += 1) {
      await env.client.create(WIDGETS, item('Widget', `w-${i}`, i));
      live.widgets.add(`w-${i}`);
      await env.client.create(GADGETS, item('Gadget', `g-${i}`, i));
      live.gadgets.add(`g-${i}`);
    }
    await env.waitFor('every widget converged', () => converged(WIDGETS, live.widgets), 60_000);
    await env.waitFor('every gadget converged, deleted ones gone through the finalizer', () => converged(GADGETS, live.gadgets), 60_000);
    // Each controller's own queue, drained; nothing parked on either.
    for (const name of ['widgets', 'gadgets']) {
      const queue = new ReconcileQueue({ controller: name, redis: env.config.redis, queue: env.config.queue });
      try {
        await env.waitFor(`${name}'s queue drained`, async () => {
          const depth = await queue.getDepth();
          return depth.waiting + depth.prioritized + depth.delayedDue + depth.active === 0;
        });
        assert.equal((await queue.getDepth()).parked, 0, `${name} parked nothing`);
      } finally {
        await queue.close();
      }
    }
  });

  it('a burst on widgets leaves the p99 queue wait of gadgets under a quarter of the median wait of the burst', async (t) => {
    // Goal: gadgets run in their own slots, so a gadget waits for a free gadget slot, not for the widgets backlog. The bound
    // is a ratio against the burst measured in the same run (a machine under load slows both), with a margin of 4.
    const burst = 150;
    const trickle = 100;
    for (let i = 0; i < burst; i += 1) await env.client.create(WIDGETS, item('Widget', `burst-${i}`, i));
    for (let i = 0; i < trickle; i += 1) await env.client.create(GADGETS, item('Gadget', `steady-${i}`, i));
    const burstKeys = Array.from({ length: burst }, (_, i) => keyOf(WIDGETS, { namespace: 'default', name: `burst-${i}` }));
    const trickleKeys = Array.from({ length: trickle }, (_, i) => keyOf(GADGETS, { namespace: 'default', name: `steady-${i}` }));
    const reconciled = (keys: readonly ObjectKey[]) => keys.every((key) => (starts.get(formatKey(key))?.length ?? 0) >= 1);
    await env.waitFor('the new objects reconciled once', () => reconciled(burstKeys) && reconciled(trickleKeys), 120_000);

    // Now each reconcile takes time: widgets 40 ms in 2 slots, so the burst drains in about 3 s; gadgets 5 ms.
    timing.widgetsMs = 40;
    timing.gadgetsMs = 5;
    const queues = {
      widgets: new ReconcileQueue({ controller: 'widgets', redis: env.config.redis, queue: env.config.queue }),
      gadgets: new ReconcileQueue({ controller: 'gadgets', redis: env.config.redis, queue: env.config.queue }),
    };
    try {
      const enqueuedAt = new Map<string, number>();
      const before = (key: ObjectKey) => starts.get(formatKey(key))?.length ?? 0;
      const seen = new Map([...burstKeys, ...trickleKeys].map((key) => [formatKey(key), before(key)]));
      const burstAt = Date.now();
      await queues.widgets.enqueueBatch(burstKeys.map((key) => ({ key, reason: 'event' as const })));
      // One gadget request every 15 ms while the burst drains, as fresh events for the other controller.
      for (const key of trickleKeys) {
        enqueuedAt.set(formatKey(key), Date.now());
        await queues.gadgets.enqueue({ key, reason: 'event' });
        await sleep(15);
      }
      const ranAgain = (key: ObjectKey) => (starts.get(formatKey(key))?.length ?? 0) > (seen.get(formatKey(key)) ?? 0);
      await env.waitFor('every burst and trickle request ran', () => burstKeys.every(ranAgain) && trickleKeys.every(ranAgain), 120_000);

      const waitOf = (key: ObjectKey, from: number) => (starts.get(formatKey(key))?.[seen.get(formatKey(key)) ?? 0] as number) - from;
      const burstWaits = burstKeys.map((key) => waitOf(key, burstAt));
      const trickleWaits = trickleKeys.map((key) => waitOf(key, enqueuedAt.get(formatKey(key)) as number));
      const burstMedian = percentile(burstWaits, 50);
      const trickleP99 = percentile(trickleWaits, 99);
      const detail = `gadgets p99 wait ${trickleP99} ms, widgets median wait ${burstMedian} ms`;
      // The burst really backed widgets up (else the comparison proves nothing): its median wait is many reconciles long.
      assert.ok(burstMedian >= 10 * timing.widgetsMs, `the burst did not back up: ${detail}`);
      assert.ok(trickleP99 * 4 <= burstMedian, `gadgets waited behind the widgets burst: ${detail}`);
      t.diagnostic(detail);
    } finally {
      timing.widgetsMs = 0;
      timing.gadgetsMs = 0;
      await queues.widgets.close();
      await queues.gadgets.close();
    }
  });
});
