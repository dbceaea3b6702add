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
import { CoreV1Api } from '@kubernetes/client-node';

// The controller author's API against the simulator and a private Redis: what finalize may answer,
// and how a timeout reaches the API calls a reconcile or finalize has in flight.

interface Widget extends KubeObject {
  spec?: { color?: string; size?: number };
  status?: { observedGeneration?: number; lastHandledReconcileAt?: string };
}

const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets' };
const CRD = new URL('../../examples/widgets/widget-crd.yaml', import.meta.url);
const FINALIZER = 'example.com/cleanup';

/** What each run of the controller saw, by object name. */
const runs = new Map<string, { phase: 'reconcile' | 'finalize'; attempt: number; callError?: unknown; at?: number }[]>();
/** What errorPolicy was asked, by object name. */
const policyCalls = new Map<string, { attempt: number; objectName: string | undefined; failedAt: number }>();

/** An error the controller knows: the backend asks to be left alone for a while. */
class BackendBusyError extends Error {}
let env: TestEnv;

function note(name: string, entry: { phase: 'reconcile' | 'finalize'; attempt: number; callError?: unknown }) {
  runs.set(name, [...(runs.get(name) ?? []), { ...entry, at: Date.now() }]);
}

/**
 * The first run of `name` pauses the API server and then makes a call — through ctx.client, or through a typed
 * client-node API made from it — which hangs until the run's timeout aborts it.
 */
async function hangOnFirstAttempt(
  name: string,
  phase: 'reconcile' | 'finalize',
  ctx: { attempt: number; client: KubeClient; key: ObjectKey },
  typed = false,
) {
  if (ctx.attempt > 1) return;
  env.sim.faults.pause();
  try {
    if (typed) await ctx.client.api(CoreV1Api).readNamespace({ name: 'default' });
    else await ctx.client.get(ctx.key);
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
    const color = widget.spec?.color;
    if (color === 'hang' || color === 'hang-typed') await hangOnFirstAttempt(name, 'reconcile', ctx, color === 'hang-typed');
    note(name, { phase: 'reconcile', attempt: ctx.attempt });
    if (color === 'doomed') throw new ctx.TerminalError('region atlantis does not exist');
    if (color === 'busy' && ctx.attempt === 1) throw new BackendBusyError('the backend is busy');
    if (color === 'parent') {
      await ctx.client.apply(ctx.own({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${name}-child`, namespace: 'default' } }));
    }
    if (color === 'verbose') ctx.events.normal('Verbose', 'é'.repeat(700));
    if (color === 'flaky' || color === 'unrecorded') {
      ctx.events.warning('BackendSlow', 'the backend answered in 30s');
      // Ten runs, each seeing the same trouble: the Event's series counts them.
      if ((runs.get(name) ?? []).length < 10) return requeueAfter('20ms');
    }
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
  lastHandledReconcileAt: true,
  errorPolicy(error, object, ctx) {
    if (!(error instanceof BackendBusyError)) return undefined;
    policyCalls.set(ctx.key.name, { attempt: ctx.attempt, objectName: object?.metadata.name, failedAt: Date.now() });
    return '1500ms';
  },
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

  describe('when a reconcile records Events', () => {
    const EVENTS = { group: 'events.k8s.io', version: 'v1', plural: 'events' };
    interface SeenEvent extends KubeObject {
      type?: string;
      reason?: string;
      note?: string;
      action?: string;
      reportingController?: string;
      regarding?: { kind?: string; name?: string; uid?: string };
      series?: { count?: number; lastObservedTime?: string };
    }
    const eventsAbout = async (name: string) =>
      (await env.client.list<SeenEvent>(EVENTS, 'default')).items.filter((e) => e.regarding?.name === name);

    it('writes ten identical warnings as one events.k8s.io/v1 Event whose series counts 10', async () => {
      await createWidget('flaky-one', 'flaky');
      // The run writes status before it waits for its Events, so the last run's count can land after observedGeneration.
      let seen: SeenEvent[] = [];
      await env.waitFor('the tenth warning counted', async () => {
        seen = await eventsAbout('flaky-one');
        return seen.some((e) => (e.series?.count ?? 1) >= 10);
      });
      const [event, ...others] = seen;
      assert.equal(others.length, 0, 'one Event, not ten');
      const widget = await env.client.get(key('flaky-one'));
      assert.equal(event?.type, 'Warning');
      assert.equal(event?.reason, 'BackendSlow');
      assert.equal(event?.note, 'the backend answered in 30s');
      assert.equal(event?.action, 'Reconcile');
      assert.equal(event?.reportingController, 'conveyor-api-widgets');
      assert.deepEqual([event?.regarding?.kind, event?.regarding?.uid], ['Widget', widget.metadata.uid]);
      assert.equal(event?.series?.count, 10);
    });

    it('cuts a note the API server would refuse (over 1024 bytes) instead of losing the Event', async () => {
      await createWidget('verbose-one', 'verbose');
      let notes: string[] = [];
      await env.waitFor('the Verbose Event', async () => {
        notes = (await eventsAbout('verbose-one')).map((e) => e.note ?? '');
        return notes.length > 0;
      });
      assert.equal(notes[0], 'é'.repeat(512));
    });

    it('still reconciles when Events cannot be written', async () => {
      env.sim.faults.serverErrors({ resources: ['events'] });
      try {
        await createWidget('unrecorded-one', 'unrecorded');
        assert.equal((runs.get('unrecorded-one') ?? []).length, 10, 'every run went on to its outcome');
      } finally {
        env.sim.faults.set({ serverErrors: null });
      }
      assert.deepEqual(await eventsAbout('unrecorded-one'), []);
    });

    it('records a Warning Event with the reason when a request is parked', async () => {
      await env.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'doomed-one', namespace: 'default' },
        spec: { color: 'doomed' },
      });
      let parked: Awaited<ReturnType<typeof eventsAbout>> = [];
      await env.waitFor('a ReconcileParked Event', async () => {
        parked = (await eventsAbout('doomed-one')).filter((e) => e.reason === 'ReconcileParked');
        return parked.length > 0;
      });
      assert.equal(parked[0]?.type, 'Warning');
      assert.match(parked[0]?.note ?? '', /region atlantis does not exist/);
    });
  });

  describe('when someone asks for a reconcile the Flux way', () => {
    it('reconciles once for reconcile.fluxcd.io/requestedAt and writes the value it handled to status.lastHandledReconcileAt', async () => {
      await createWidget('asked', 'plain');
      const before = (runs.get('asked') ?? []).length;
      const requestedAt = '2026-11-30T10:00:00.123456789Z';
      await env.client.patch(key('asked'), {
        type: 'merge',
        body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt } } },
      });
      await env.waitFor(
        'lastHandledReconcileAt written',
        async () => (await env.client.get<Widget>(key('asked'))).status?.lastHandledReconcileAt === requestedAt,
      );
      // The status write is the controller's own and moves no generation: it must not ask again.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal((runs.get('asked') ?? []).length - before, 1, 'one reconcile for one request');
    });
  });

  describe('when the controller has an errorPolicy', () => {
    it('retries a failure it knows after the delay it chose instead of the default backoff', async () => {
      await createWidget('busy-one', 'busy');
      const call = policyCalls.get('busy-one');
      assert.deepEqual([call?.attempt, call?.objectName], [1, 'busy-one'], 'the policy saw the failed run and its object');
      const retry = (runs.get('busy-one') ?? []).find((r) => r.attempt === 2);
      assert.ok(retry?.at !== undefined && call !== undefined);
      // The default backoff here is 50 ms; the policy asked for 1.5 s.
      assert.ok(retry.at - call.failedAt >= 1_400, `the retry waited ${retry.at - call.failedAt} ms`);
    });
  });

  describe('when a reconcile makes a child with ctx.own', () => {
    it('gives the child a controller ownerReference to the object being reconciled', async () => {
      await createWidget('parent-one', 'parent');
      const parent = await env.client.get(key('parent-one'));
      const child = await env.client.get({
        group: '',
        version: 'v1',
        plural: 'configmaps',
        namespace: 'default',
        name: 'parent-one-child',
      });
      assert.deepEqual(child.metadata.ownerReferences, [
        {
          apiVersion: 'example.com/v1',
          kind: 'Widget',
          name: 'parent-one',
          uid: parent.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    });
  });

  describe('when an API call hangs past the timeout', () => {
    for (const [name, color, phase] of [
      ['hung-reconcile', 'hang', 'reconcile'],
      ['hung-finalize', 'hang-cleanup', 'finalize'],
      ['hung-typed', 'hang-typed', 'reconcile'],
    ] as const) {
      const through = color === 'hang-typed' ? 'typed client-node API call' : 'ctx.client call';
      it(`aborts the ${phase}'s in-flight ${through} at its timeout and retries the request`, async () => {
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
