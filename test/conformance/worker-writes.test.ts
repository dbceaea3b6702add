// Conformance: what a worker writes by server-side apply — a child and the status (conditions merged by type with other managers'), a conflict naming the other manager, and a stale run refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type ApplyObject,
  type Controller,
  createLogger,
  defineController,
  fieldManagerOf,
  KubeApiClient,
  type KubeObject,
  type ObjectKey,
  type ReconcileContext,
  type StoredObject,
  unlimitedBudget,
} from '@conveyor/shared';
import { processRequest } from '@conveyor/workers';
import { apply, merge, openTarget, type Target } from './target.ts';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Widget extends KubeObject {
  spec?: { size?: number; color?: string };
  status?: { phase?: string; observedGeneration?: number; conditions?: Condition[] };
}
interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}
interface ManagedEntry {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
const logger = createLogger({ level: 'silent' });

describe('Kubernetes API conformance: what the workers write', () => {
  let target: Target;
  let widgetRef: { group: string; version: string; plural: string; kind: string };
  before(async () => {
    target = await openTarget();
    widgetRef = { ...target.widgets, kind: 'Widget' };
  });
  after(async () => {
    await target.close();
  });

  /** A controller whose reconcile is `reconcile`, run once by processRequest with the workers' client (field manager conveyor-<name>). */
  const runOnce = async (name: string, key: ObjectKey, reconcile: (w: StoredObject<Widget>, ctx: ReconcileContext<Widget>) => unknown) => {
    const controller: Controller<Widget> = defineController<Widget>({
      name,
      for: widgetRef,
      owns: [{ ...CONFIGMAPS, kind: 'ConfigMap' }],
      reconcile: async (w, ctx) => {
        await reconcile(w, ctx);
        return undefined;
      },
    });
    const client = new KubeApiClient({
      kubeConfig: target.kc,
      budget: unlimitedBudget,
      fieldManager: fieldManagerOf(name),
      resources: [widgetRef, { ...CONFIGMAPS, kind: 'ConfigMap' }],
    });
    return await processRequest(
      controller,
      { key, reason: 'event', attempt: 1 },
      {
        client,
        logger,
        deps: undefined,
        reconcileTimeoutMs: 10_000,
        finalizeTimeoutMs: 10_000,
      },
    );
  };
  const createWidget = async (name: string) => {
    await target.custom.createNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      body: { apiVersion: `${target.group}/v1`, kind: 'Widget', metadata: { name }, spec: { size: 1, color: 'red' } },
    });
    return { ...target.widgets, namespace: target.namespace, name };
  };
  const readWidget = async (name: string) =>
    (await target.custom.getNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name })) as StoredObject<Widget>;
  const applyStatusAs = (manager: string, name: string, status: Widget['status']) =>
    target.custom.patchNamespacedCustomObjectStatus(
      {
        ...target.widgets,
        namespace: target.namespace,
        name,
        fieldManager: manager,
        body: { apiVersion: `${target.group}/v1`, kind: 'Widget', metadata: { name }, status },
      },
      apply(),
    );
  const child = (widget: StoredObject<Widget>, data: Record<string, string>): ApplyObject<ConfigMap> => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${widget.metadata.name}-child`,
      namespace: widget.metadata.namespace ?? '',
      ownerReferences: [
        { apiVersion: `${target.group}/v1`, kind: 'Widget', name: widget.metadata.name, uid: widget.metadata.uid ?? '', controller: true },
      ],
    },
    data,
  });

  it('applies a child and the status once; its condition merges by type with another manager’s, which stays', async () => {
    const key = await createWidget('applied');
    await applyStatusAs('sync-controller', 'applied', { conditions: [{ type: 'Synced', status: 'True', reason: 'Synced' }] });
    const reconcile = (ready: string) => async (w: StoredObject<Widget>, ctx: ReconcileContext<Widget>) => {
      await ctx.client.apply(child(w, { color: w.spec?.color ?? '' }));
      ctx.patchStatus({ observedGeneration: w.metadata.generation ?? 0, conditions: [{ type: 'Ready', status: ready, reason: 'Child' }] });
    };
    assert.deepEqual(await runOnce('appliers', key, reconcile('True')), { kind: 'done' });

    const cm = (await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'applied-child' })) as ConfigMap;
    assert.deepEqual(cm.data, { color: 'red' });
    assert.equal(cm.metadata?.ownerReferences?.[0]?.controller, true);
    let widget = await readWidget('applied');
    assert.deepEqual(
      widget.status?.conditions?.map((c) => [c.type, c.status]),
      [
        ['Synced', 'True'],
        ['Ready', 'True'],
      ],
    );
    const ours = (widget.metadata.managedFields as ManagedEntry[]).find(
      (e) => e.manager === 'conveyor-appliers' && e.subresource === 'status',
    );
    assert.equal(ours?.operation, 'Apply');
    const statusFields = (ours?.fieldsV1?.['f:status'] ?? {}) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(statusFields['f:conditions'] ?? {}), ['k:{"type":"Ready"}'], 'it owns its own condition only');

    const unchanged = widget.metadata.resourceVersion;
    await runOnce('appliers', key, reconcile('True'));
    widget = await readWidget('applied');
    assert.equal(widget.metadata.resourceVersion, unchanged, 'a reconcile that changes nothing writes nothing');

    await runOnce('appliers', key, reconcile('False'));
    widget = await readWidget('applied');
    assert.deepEqual(
      widget.status?.conditions?.map((c) => [c.type, c.status]),
      [
        ['Synced', 'True'],
        ['Ready', 'False'],
      ],
    );
  });

  it('keeps the status fields it applied before when a later reconcile mentions only some of them', async () => {
    const key = await createWidget('partial');
    await runOnce('partials', key, (w, ctx) => ctx.patchStatus({ observedGeneration: w.metadata.generation ?? 0, phase: 'Ready' }));
    await runOnce('partials', key, (_w, ctx) => ctx.patchStatus({ phase: 'Degraded' }));
    const widget = await readWidget('partial');
    assert.deepEqual(widget.status, { observedGeneration: 1, phase: 'Degraded' });
    await runOnce('partials', key, (_w, ctx) => ctx.patchStatus({ phase: null }));
    assert.deepEqual((await readWidget('partial')).status, { observedGeneration: 1 }, 'null removes a field it applied');
  });

  it('fails with a retryable conflict naming the other manager and the field, unless the controller forces', async () => {
    const key = await createWidget('contested');
    await target.core.patchNamespacedConfigMap(
      {
        namespace: target.namespace,
        name: 'contested-child',
        fieldManager: 'editor',
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'contested-child' }, data: { color: 'green' } },
      },
      apply(),
    );
    const outcome = await runOnce('contenders', key, async (w, ctx) => {
      await ctx.client.apply(child(w, { color: 'red' }));
    });
    assert.equal(outcome.kind, 'error');
    assert.equal(outcome.kind === 'error' && outcome.code, 'CONFLICT');
    const message = outcome.kind === 'error' ? outcome.message : '';
    assert.match(message, /field manager "conveyor-contenders"/);
    assert.match(message, /\.data\.color \(owned by "editor"\)/);

    assert.deepEqual(
      await runOnce('contenders', key, async (w, ctx) => {
        await ctx.client.apply(child(w, { color: 'red' }), { force: true });
      }),
      { kind: 'done' },
    );
    const cm = await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'contested-child' });
    assert.equal(cm.data?.color, 'red');
  });

  it('refuses the status of a stale run: a write between its read and its status apply makes it 409, and the newer status stays', async () => {
    const key = await createWidget('stale');
    const outcome = await runOnce('stalers', key, async (_w, ctx) => {
      // What a newer run (after this one lost its queue lock) or a user writes meanwhile.
      await target.custom.patchNamespacedCustomObjectStatus(
        { ...target.widgets, namespace: target.namespace, name: 'stale', body: { status: { phase: 'Newer' } } },
        merge(),
      );
      ctx.patchStatus({ phase: 'Stale' });
    });
    assert.equal(outcome.kind, 'error');
    assert.equal(outcome.kind === 'error' && outcome.code, 'CONFLICT');
    assert.equal((await readWidget('stale')).status?.phase, 'Newer');
  });

  it('takes over status fields its own manager wrote by merge patch before it applied them', async () => {
    const key = await createWidget('upgraded');
    await target.custom.patchNamespacedCustomObjectStatus(
      {
        ...target.widgets,
        namespace: target.namespace,
        name: 'upgraded',
        fieldManager: fieldManagerOf('upgraders'),
        body: { status: { phase: 'Old', observedGeneration: 0 } },
      },
      merge(),
    );
    assert.deepEqual(
      await runOnce('upgraders', key, (w, ctx) => ctx.patchStatus({ phase: 'New', observedGeneration: w.metadata.generation ?? 0 })),
      { kind: 'done' },
    );
    assert.deepEqual((await readWidget('upgraded')).status, { phase: 'New', observedGeneration: 1 });
  });
});
