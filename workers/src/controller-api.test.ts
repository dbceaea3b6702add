import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  defineController,
  type KubeClient,
  type KubeObject,
  type ObjectKey,
  ReconcileQueue,
  requeueAfter,
  TimeoutError,
} from '@conveyor/shared';
import { startTestEnv, type TestEnv } from '@conveyor/test/test-env';

// The controller author's API against the simulator and a private Redis: what finalize may answer,
// and how a timeout reaches the API calls a reconcile or finalize has in flight.

interface Widget extends KubeObject {
  spec?: { color?: string; size?: number };
  status?: { observedGeneration?: number };
}

const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets' };
const CRD = new URL('../../examples/widgets/widget-crd.yaml', import.meta.url);
const FINALIZER = 'example.com/cleanup';

/** What each run of the controller saw, by object name. */
const runs = new Map<string, { phase: 'reconcile' | 'finalize'; attempt: number; callError?: unknown }[]>();
let env: TestEnv;

function note(name: string, entry: { phase: 'reconcile' | 'finalize'; attempt: number; callError?: unknown }) {
  runs.set(name, [...(runs.get(name) ?? []), entry]);
}

/** The first run of `name` pauses the API server and then makes a call, which hangs until the run's timeout aborts it. */
async function hangOnFirstAttempt(
  name: string,
  phase: 'reconcile' | 'finalize',
  ctx: { attempt: number; client: KubeClient; key: ObjectKey },
) {
  if (ctx.attempt > 1) return;
  env.sim.faults.pause();
  try {
    await ctx.client.get(ctx.key);
    note(name, { phase, attempt: ctx.attempt, callError: 'the call returned' });
  } catch (error) {
    note(name, { phase, attempt: ctx.attempt, callError: error });
  }
}

const controller = defineController<Widget>({
  name: 'api-widgets',
  for: { ...WIDGETS, kind: 'Widget' },
  finalizer: FINALIZER,
  // Spec colours pick the behaviour: `slow-cleanup` needs four looks at finalize, `hang` and `hang-cleanup` pause the API server.
  async reconcile(widget, ctx) {
    const name = widget.metadata.name;
    if (widget.spec?.color === 'hang') await hangOnFirstAttempt(name, 'reconcile', ctx);
    note(name, { phase: 'reconcile', attempt: ctx.attempt });
    ctx.patchStatus({ observedGeneration: widget.metadata.generation ?? 0 });
    return undefined;
  },
  async finalize(widget, ctx) {
    const name = widget.metadata.name;
    if (widget.spec?.color === 'hang-cleanup') await hangOnFirstAttempt(name, 'finalize', ctx);
    note(name, { phase: 'finalize', attempt: ctx.attempt });
    if (widget.spec?.color === 'slow-cleanup' && (runs.get(name) ?? []).filter((r) => r.phase === 'finalize').length <= 3) {
      return requeueAfter('100ms');
    }
    if (widget.spec?.color === 'never-done') return requeueAfter('200ms');
    return undefined;
  },
  finalizeDeadline: '1500ms',
});

function key(name: string): ObjectKey {
  return { ...WIDGETS, namespace: 'default', name };
}

async function createWidget(name: string, color: string): Promise<void> {
  await env.client.create<Widget>(WIDGETS, {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: { name, namespace: 'default' },
    spec: { color },
  });
  await env.waitFor(`${name} reconciled`, async () => (await env.client.find<Widget>(key(name)))?.status?.observedGeneration === 1);
}

describe('The controller API on the simulator and a private Redis', () => {
  before(async () => {
    env = await startTestEnv({
      controller,
      crds: [CRD],
      settings: { 'worker.reconcileTimeout': '1s', 'worker.finalizeTimeout': '1s', 'queue.backoff.base': '50ms' },
    });
  });
  after(async () => {
    env.sim.faults.resume();
    await env?.close();
  });

  describe('when finalize answers requeueAfter', () => {
    it('runs finalize again after the delay with no attempt spent, keeps the finalizer meanwhile, and removes it once finalize is done', async () => {
      await createWidget('slow', 'slow-cleanup');
      await env.client.delete(key('slow'));
      await env.waitFor('slow deleted', async () => (await env.client.find(key('slow'))) === undefined);
      const finalizes = (runs.get('slow') ?? []).filter((r) => r.phase === 'finalize');
      assert.equal(finalizes.length, 4, 'three requeues then success');
      assert.deepEqual(
        finalizes.map((r) => r.attempt),
        [1, 1, 1, 1],
        'a requeueAfter spends no attempt',
      );
    });

    it('parks a finalize that still asks to look again past finalizeDeadline, with the reason conveyor status shows', async () => {
      await createWidget('stuck', 'never-done');
      await env.client.delete(key('stuck'));
      const queue = new ReconcileQueue({ controller: controller.name, redis: env.config.redis, queue: env.config.queue });
      try {
        let parked: Awaited<ReturnType<ReconcileQueue['listParked']>> = [];
        await env.waitFor('the stuck finalize parked', async () => {
          parked = await queue.listParked();
          return parked.some((p) => p.key.name === 'stuck');
        });
        const entry = parked.find((p) => p.key.name === 'stuck');
        assert.match(entry?.error ?? '', /finalize has not finished .* after deletion \(finalizeDeadline 1s500ms\)/);
        assert.equal(entry?.parked, 'terminal');
        const stuck = await env.client.get(key('stuck'));
        assert.deepEqual(stuck.metadata.finalizers, [FINALIZER], 'the finalizer stays while cleanup is unfinished');
      } finally {
        await queue.close();
      }
    });
  });

  describe('when an API call hangs past the timeout', () => {
    for (const [name, color, phase] of [
      ['hung-reconcile', 'hang', 'reconcile'],
      ['hung-finalize', 'hang-cleanup', 'finalize'],
    ] as const) {
      it(`aborts the ${phase}'s in-flight call at its timeout and retries the request`, async () => {
        if (phase === 'reconcile') {
          await env.client.create<Widget>(WIDGETS, {
            apiVersion: 'example.com/v1',
            kind: 'Widget',
            metadata: { name, namespace: 'default' },
            spec: { color },
          });
        } else {
          await createWidget(name, color);
          await env.client.delete(key(name));
        }
        await env.waitFor(`the hung call of ${name} aborted`, () => (runs.get(name) ?? []).some((r) => r.callError !== undefined));
        const aborted = (runs.get(name) ?? []).find((r) => r.callError !== undefined);
        assert.ok(
          aborted?.callError instanceof TimeoutError,
          `the call rejected with the run's timeout, got ${String(aborted?.callError)}`,
        );
        env.sim.faults.resume();
        if (phase === 'reconcile') {
          await env.waitFor(
            `${name} reconciled on retry`,
            async () => (await env.client.find<Widget>(key(name)))?.status?.observedGeneration === 1,
          );
        } else {
          await env.waitFor(`${name} finalized on retry`, async () => (await env.client.find(key(name))) === undefined);
        }
        const later = (runs.get(name) ?? []).filter((r) => r.phase === phase && r.callError === undefined);
        assert.ok(
          later.some((r) => r.attempt === 2),
          'the retry is the second attempt',
        );
      });
    }
  });
});
