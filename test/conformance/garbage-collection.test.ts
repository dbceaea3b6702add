// Conformance: what kube-controller-manager does on deletion — dependents of an owner collected (background, foreground, orphan) and a namespace emptied, then removed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1ConfigMap, V1OwnerReference } from '@kubernetes/client-node';
import { eventually, expectStatus, merge, NEEDS_CONTROLLER_MANAGER, openTarget, type Target } from './target.ts';

type Obj = { metadata: { name: string; uid: string; deletionTimestamp?: string; finalizers?: string[] } };

const HOLD = 'conformance.conveyor.dev/hold';

describe('Kubernetes API conformance: garbage collection and namespace deletion', { skip: NEEDS_CONTROLLER_MANAGER }, () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  const createWidget = async (name: string, finalizers?: string[]) =>
    (await target.custom.createNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      body: {
        apiVersion: `${target.group}/v1`,
        kind: 'Widget',
        metadata: { name, ...(finalizers ? { finalizers } : {}) },
        spec: { size: 1 },
      },
    })) as Obj;
  const ownedBy = (owner: Obj, extra: Partial<V1OwnerReference> = {}): V1OwnerReference => ({
    apiVersion: `${target.group}/v1`,
    kind: 'Widget',
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    ...extra,
  });
  const createChild = (name: string, owners: V1OwnerReference[], finalizers?: string[], namespace = target.namespace) =>
    target.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name, ownerReferences: owners, ...(finalizers ? { finalizers } : {}) }, data: { k: 'v' } },
    });
  const readChild = (name: string) => target.core.readNamespacedConfigMap({ namespace: target.namespace, name });
  const gone = (read: () => Promise<unknown>, timeoutMs = 30_000) =>
    eventually(async () => {
      await expectStatus(read(), 404, 'NotFound');
    }, timeoutMs);
  const deleteWidget = (name: string, propagationPolicy?: string) =>
    target.custom.deleteNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      name,
      ...(propagationPolicy === undefined ? {} : { propagationPolicy }),
    });
  const getWidget = async (name: string) =>
    (await target.custom.getNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name })) as Obj;

  it('deletes the dependents of a deleted owner (background), and only drops the reference where another owner lives on', async () => {
    const owner = await createWidget('bg-owner');
    const other = await createWidget('bg-other');
    await createChild('bg-child', [ownedBy(owner, { controller: true, blockOwnerDeletion: true })]);
    await createChild('bg-shared', [ownedBy(owner), ownedBy(other)]);
    await deleteWidget('bg-owner');
    await expectStatus(getWidget('bg-owner'), 404, 'NotFound');
    await gone(() => readChild('bg-child'));
    const shared = await eventually(async () => {
      const cm = await readChild('bg-shared');
      assert.deepEqual(
        cm.metadata?.ownerReferences?.map((r) => r.name),
        ['bg-other'],
      );
      return cm;
    });
    assert.equal(shared.metadata?.deletionTimestamp, undefined);
  });

  it('collects a dependent whose owner does not exist', async () => {
    const ghost: V1OwnerReference = {
      apiVersion: `${target.group}/v1`,
      kind: 'Widget',
      name: 'never-created',
      uid: '00000000-0000-4000-8000-000000000000',
    };
    await createChild('orphaned-at-birth', [ghost]);
    await gone(() => readChild('orphaned-at-birth'));
  });

  it('deletes in the foreground: the owner waits, with the foregroundDeletion finalizer, until no blocking dependent is left', async () => {
    const owner = await createWidget('fg-owner');
    await createChild('fg-blocking', [ownedBy(owner, { blockOwnerDeletion: true })], [HOLD]);
    await deleteWidget('fg-owner', 'Foreground');
    const waiting = await getWidget('fg-owner');
    assert.ok(waiting.metadata.deletionTimestamp, 'the owner is being deleted');
    assert.ok(waiting.metadata.finalizers?.includes('foregroundDeletion'), `finalizers: ${JSON.stringify(waiting.metadata.finalizers)}`);
    const child = await eventually(async () => {
      const cm = await readChild('fg-blocking');
      assert.ok(cm.metadata?.deletionTimestamp, 'the dependent is being deleted');
      return cm;
    });
    assert.deepEqual(child.metadata?.finalizers, [HOLD]);
    assert.ok((await getWidget('fg-owner')).metadata.deletionTimestamp, 'the owner still waits for its blocking dependent');
    await target.core.patchNamespacedConfigMap(
      { namespace: target.namespace, name: 'fg-blocking', body: { metadata: { finalizers: null } } },
      merge(),
    );
    await gone(() => readChild('fg-blocking'));
    await gone(() => getWidget('fg-owner'));
  });

  it('orphans the dependents when asked: they stay, without the reference to the deleted owner', async () => {
    const owner = await createWidget('orphan-owner');
    await createChild('orphan-child', [ownedBy(owner, { controller: true })]);
    await deleteWidget('orphan-owner', 'Orphan');
    await gone(() => getWidget('orphan-owner'));
    const child: V1ConfigMap = await readChild('orphan-child');
    assert.equal(child.metadata?.deletionTimestamp, undefined);
    assert.deepEqual(child.metadata?.ownerReferences ?? [], []);
  });

  it('deletes a namespace: Terminating at once, creates in it refused with 403, its contents deleted (finalizers honoured), then the namespace', async () => {
    const namespace = `${target.namespace}-doomed`;
    await target.core.createNamespace({ body: { metadata: { name: namespace } } });
    await target.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'plain' } } });
    await target.custom.createNamespacedCustomObject({
      ...target.widgets,
      namespace,
      body: { apiVersion: `${target.group}/v1`, kind: 'Widget', metadata: { name: 'held', finalizers: [HOLD] }, spec: { size: 1 } },
    });
    const deleting = await target.core.deleteNamespace({ name: namespace });
    assert.equal((deleting as { status?: { phase?: string } }).status?.phase, 'Terminating');
    const refused = await expectStatus(
      target.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'late' } } }),
      403,
      'Forbidden',
    );
    assert.ok(
      ((refused.details?.causes ?? []) as Array<{ reason?: string }>).some((c) => c.reason === 'NamespaceTerminating'),
      JSON.stringify(refused),
    );
    await gone(() => target.core.readNamespacedConfigMap({ namespace, name: 'plain' }), 60_000);
    const held = await eventually(async () => {
      const w = (await target.custom.getNamespacedCustomObject({ ...target.widgets, namespace, name: 'held' })) as Obj;
      assert.ok(w.metadata.deletionTimestamp);
      return w;
    }, 60_000);
    assert.deepEqual(held.metadata.finalizers, [HOLD]);
    assert.equal(
      (await target.core.readNamespace({ name: namespace })).status?.phase,
      'Terminating',
      'the namespace waits for the finalizer',
    );
    await target.custom.patchNamespacedCustomObject(
      { ...target.widgets, namespace, name: 'held', body: { metadata: { finalizers: null } } },
      merge(),
    );
    await gone(() => target.core.readNamespace({ name: namespace }), 60_000);
  });
});
