// Conformance: object semantics (verbs, resourceVersion, generation, finalizers, subresources, patches) through @kubernetes/client-node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoordinationV1Api, CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { expectStatus, merge, openTarget, openWatch, rvOf, strategic, type Target, withToken } from './target.ts';

type Obj = {
  metadata: Record<string, unknown> & { name: string; resourceVersion: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
};

describe('Kubernetes API conformance: objects', () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  const widget = (name: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: `${target.group}/v1`,
    kind: 'Widget',
    metadata: { name, ...extra },
    spec: { size: 1, replicas: 1 },
  });
  const createWidget = async (name: string, extra: Record<string, unknown> = {}) =>
    (await target.custom.createNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      body: widget(name, extra),
    })) as Obj;
  const patchWidget = async (name: string, body: unknown, subresource?: 'status') => {
    const params = { ...target.widgets, namespace: target.namespace, name, body };
    return (await (subresource === 'status'
      ? target.custom.patchNamespacedCustomObjectStatus(params, merge())
      : target.custom.patchNamespacedCustomObject(params, merge()))) as Obj;
  };
  const getWidget = async (name: string) =>
    (await target.custom.getNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name })) as Obj;

  it('rejects a request without a valid bearer token with 401 Unauthorized', async () => {
    const core = withToken(target.kc, 'not-a-valid-token').makeApiClient(CoreV1Api);
    // client-node drops the body of a 401 (its generated code has no Status for it), so only the code is visible.
    await assert.rejects(core.listNamespacedConfigMap({ namespace: target.namespace }), (error: { code?: number }) => error.code === 401);
  });

  it('creates, reads, updates and deletes a ConfigMap; the resourceVersion grows with every write', async () => {
    const { core, namespace } = target;
    const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'crud' }, data: { a: '1' } } });
    assert.ok(created.metadata?.uid);
    assert.ok(created.metadata?.creationTimestamp);
    const read = await core.readNamespacedConfigMap({ namespace, name: 'crud' });
    assert.deepEqual(read.data, { a: '1' });
    const updated = await core.replaceNamespacedConfigMap({ namespace, name: 'crud', body: { ...read, data: { a: '2' } } });
    assert.ok(BigInt(rvOf(updated)) > BigInt(rvOf(created)), 'resourceVersion increases');
    assert.equal(updated.metadata?.uid, created.metadata?.uid);
    await core.deleteNamespacedConfigMap({ namespace, name: 'crud' });
    await expectStatus(core.readNamespacedConfigMap({ namespace, name: 'crud' }), 404, 'NotFound');
  });

  it('answers a duplicate create with 409 AlreadyExists and a missing object with 404 NotFound naming it', async () => {
    await createWidget('dup');
    const status = await expectStatus(createWidget('dup'), 409, 'AlreadyExists');
    assert.equal(status.details?.name, 'dup');
    const missing = await expectStatus(getWidget('nope'), 404, 'NotFound');
    assert.equal(missing.details?.name, 'nope');
    assert.match(missing.message, /"nope" not found/);
  });

  it('rejects an update that carries a stale resourceVersion with 409 Conflict', async () => {
    const first = await createWidget('stale');
    await patchWidget('stale', { spec: { size: 2 } });
    const status = await expectStatus(
      target.custom.replaceNamespacedCustomObject({
        ...target.widgets,
        namespace: target.namespace,
        name: 'stale',
        body: { ...first, spec: { size: 3 } },
      }),
      409,
      'Conflict',
    );
    assert.match(status.message, /the object has been modified/);
    assert.equal((await getWidget('stale')).spec?.size, 2, 'the stale write changed nothing');
  });

  it('rejects a merge patch whose resourceVersion is stale with 409 Conflict', async () => {
    const first = await createWidget('stale-patch');
    await patchWidget('stale-patch', { spec: { size: 5 } });
    await expectStatus(
      patchWidget('stale-patch', { metadata: { resourceVersion: first.metadata.resourceVersion }, spec: { size: 6 } }),
      409,
      'Conflict',
    );
  });

  it('sets generation 1 on create, keeps it on status and label changes, bumps it on spec changes', async () => {
    const created = await createWidget('gen');
    assert.equal(created.metadata.generation, 1);
    const labelled = await patchWidget('gen', { metadata: { labels: { tier: 'gold' } } });
    assert.equal(labelled.metadata.generation, 1);
    const statused = await patchWidget('gen', { status: { ready: true } }, 'status');
    assert.equal(statused.metadata.generation, 1);
    assert.deepEqual(statused.status, { ready: true });
    const specced = await patchWidget('gen', { spec: { size: 9 } });
    assert.equal(specced.metadata.generation, 2);
  });

  it('ignores status in writes to the main resource and everything but status in writes to /status', async () => {
    await createWidget('subres');
    const main = await patchWidget('subres', { spec: { size: 4 }, status: { phase: 'ignored' } });
    assert.equal(main.status?.phase, undefined);
    assert.equal(main.spec?.size, 4);
    const status = await patchWidget('subres', { spec: { size: 100 }, status: { phase: 'Ready' } }, 'status');
    assert.equal(status.status?.phase, 'Ready');
    assert.equal(status.spec?.size, 4);
  });

  it('keeps an object with finalizers after delete: deletionTimestamp set, generation bumped, DELETED once the last finalizer goes', async () => {
    const created = await createWidget('fin', { finalizers: ['conformance.conveyor.dev/a', 'conformance.conveyor.dev/b'] });
    const watch = await openWatch(target.kc, `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets`, {
      resourceVersion: created.metadata.resourceVersion,
      fieldSelector: 'metadata.name=fin',
    });
    try {
      await target.custom.deleteNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name: 'fin' });
      const deleting = await getWidget('fin');
      assert.ok(deleting.metadata.deletionTimestamp, 'deletionTimestamp is set');
      assert.equal(deleting.metadata.generation, 2, 'generation moves when deletion starts');
      await expectStatus(
        target.custom.patchNamespacedCustomObject({
          ...target.widgets,
          namespace: target.namespace,
          name: 'fin',
          body: [{ op: 'add', path: '/metadata/finalizers/-', value: 'conformance.conveyor.dev/c' }],
        }),
        422,
        'Invalid',
      );
      await target.custom.patchNamespacedCustomObject({
        ...target.widgets,
        namespace: target.namespace,
        name: 'fin',
        body: [
          { op: 'test', path: '/metadata/finalizers/0', value: 'conformance.conveyor.dev/a' },
          { op: 'remove', path: '/metadata/finalizers/0' },
        ],
      });
      assert.equal(
        (await getWidget('fin')).metadata.finalizers?.toString(),
        'conformance.conveyor.dev/b',
        'still there with one finalizer',
      );
      await patchWidget('fin', { metadata: { finalizers: null } });
      await expectStatus(getWidget('fin'), 404, 'NotFound');
      await watch.next((e) => e.type === 'DELETED');
      const types = watch.events.map((e) => e.type);
      assert.deepEqual(types.slice(0, 1), ['MODIFIED'], 'deletion starts with a MODIFIED event');
      assert.equal(types.filter((t) => t === 'DELETED').length, 1);
    } finally {
      watch.stop();
    }
  });

  it('applies a JSON patch whose test op holds, and answers one whose test op fails with 422 changing nothing', async () => {
    const created = await createWidget('jsonpatch');
    const params = { ...target.widgets, namespace: target.namespace, name: 'jsonpatch' };
    const ok = (await target.custom.patchNamespacedCustomObject({
      ...params,
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: created.metadata.resourceVersion },
        { op: 'replace', path: '/spec/size', value: 7 },
      ],
    })) as Obj;
    assert.equal(ok.spec?.size, 7);
    await expectStatus(
      target.custom.patchNamespacedCustomObject({
        ...params,
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: created.metadata.resourceVersion },
          { op: 'replace', path: '/spec/size', value: 8 },
        ],
      }),
      422,
      'Invalid',
    );
    assert.equal((await getWidget('jsonpatch')).spec?.size, 7);
  });

  it('serves the scale subresource of a custom resource and of a Deployment', async () => {
    await createWidget('scaled');
    const scale = await target.custom.getNamespacedCustomObjectScale({ ...target.widgets, namespace: target.namespace, name: 'scaled' });
    assert.equal((scale as { kind: string }).kind, 'Scale');
    assert.equal((scale as { spec: { replicas: number } }).spec.replicas, 1);
    await target.custom.patchNamespacedCustomObjectScale(
      { ...target.widgets, namespace: target.namespace, name: 'scaled', body: { spec: { replicas: 4 } } },
      merge(),
    );
    const after = await getWidget('scaled');
    assert.equal(after.spec?.replicas, 4);
    assert.equal(after.metadata.generation, 2);

    const apps = target.kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: target.namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1' }] } },
        },
      },
    });
    const s = await apps.replaceNamespacedDeploymentScale({
      namespace: target.namespace,
      name: 'web',
      body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web', namespace: target.namespace }, spec: { replicas: 3 } },
    });
    assert.equal(s.spec?.replicas, 3);
    assert.equal((await apps.readNamespacedDeployment({ namespace: target.namespace, name: 'web' })).spec?.replicas, 3);
    assert.equal((await apps.readNamespacedDeploymentScale({ namespace: target.namespace, name: 'web' })).status?.selector, 'app=web');
  });

  it('merges a strategic merge patch into a Deployment by container name, and refuses one for a custom resource with 415', async () => {
    const apps = target.kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: target.namespace,
      body: {
        metadata: { name: 'smp' },
        spec: {
          selector: { matchLabels: { app: 'smp' } },
          template: {
            metadata: { labels: { app: 'smp' } },
            spec: {
              containers: [
                { name: 'a', image: 'a:1' },
                { name: 'b', image: 'b:1' },
              ],
            },
          },
        },
      },
    });
    const patched = await apps.patchNamespacedDeployment(
      { namespace: target.namespace, name: 'smp', body: { spec: { template: { spec: { containers: [{ name: 'b', image: 'b:2' }] } } } } },
      strategic(),
    );
    assert.deepEqual(
      patched.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`),
      ['a=a:1', 'b=b:2'],
    );
    assert.equal(patched.metadata?.generation, 2);
    await createWidget('no-smp');
    await expectStatus(
      target.custom.patchNamespacedCustomObject(
        { ...target.widgets, namespace: target.namespace, name: 'no-smp', body: { spec: { size: 2 } } },
        strategic(),
      ),
      415,
      'UnsupportedMediaType',
    );
  });

  it('records managedFields for the writer', async () => {
    const created = (await target.core.createNamespacedConfigMap({
      namespace: target.namespace,
      body: { metadata: { name: 'managed', labels: { a: 'b' } }, data: { k: 'v' } },
      fieldManager: 'conformance',
    })) as V1ConfigMap;
    const entry = created.metadata?.managedFields?.find((m) => m.manager === 'conformance');
    assert.ok(entry, `managedFields names the manager: ${JSON.stringify(created.metadata?.managedFields)}`);
    assert.equal(entry.operation, 'Update');
    assert.equal(entry.fieldsType, 'FieldsV1');
    assert.ok(JSON.stringify(entry.fieldsV1).includes('f:k'), 'the data key it set is listed');
  });

  it('serves cluster-scoped custom resources', async () => {
    const { custom, gadgets, group } = target;
    await custom.createClusterCustomObject({
      ...gadgets,
      body: { apiVersion: `${group}/v1`, kind: 'Gadget', metadata: { name: 'g1' }, spec: { x: 1 } },
    });
    const got = (await custom.getClusterCustomObject({ ...gadgets, name: 'g1' })) as Obj;
    assert.equal(got.metadata.namespace, undefined);
    assert.equal(got.metadata.generation, 1);
    // Without a status subresource, status is part of the object and counts for generation.
    const patched = (await custom.patchClusterCustomObject({ ...gadgets, name: 'g1', body: { status: { y: 2 } } }, merge())) as Obj;
    assert.deepEqual(patched.status, { y: 2 });
    assert.equal(patched.metadata.generation, 2);
    await custom.deleteClusterCustomObject({ ...gadgets, name: 'g1' });
    await expectStatus(custom.getClusterCustomObject({ ...gadgets, name: 'g1' }), 404, 'NotFound');
  });

  it('refuses to create an object in a namespace that does not exist', async () => {
    await expectStatus(
      target.core.createNamespacedConfigMap({ namespace: `${target.namespace}-missing`, body: { metadata: { name: 'x' } } }),
      404,
      'NotFound',
    );
  });

  it('rejects an invalid name with 422 Invalid naming the field', async () => {
    const status = await expectStatus(
      target.core.createNamespacedConfigMap({ namespace: target.namespace, body: { metadata: { name: 'Not_Valid' } } }),
      422,
      'Invalid',
    );
    assert.equal((status.details?.causes as Array<{ field: string }> | undefined)?.[0]?.field, 'metadata.name');
  });

  it('rejects an ownerReference without a uid with 422 naming the field', async () => {
    const status = await expectStatus(
      target.core.createNamespacedConfigMap({
        namespace: target.namespace,
        body: { metadata: { name: 'bad-owner', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: '' }] } },
      }),
      422,
      'Invalid',
    );
    assert.ok(
      (status.details?.causes as Array<{ field: string }> | undefined)?.some((c) => c.field === 'metadata.ownerReferences.uid'),
      JSON.stringify(status.details),
    );
  });

  it('stores Secrets with stringData encoded into data, and Leases', async () => {
    const secret = await target.core.createNamespacedSecret({
      namespace: target.namespace,
      body: { metadata: { name: 's' }, stringData: { password: 'hunter2' } },
    });
    assert.equal(secret.data?.password, Buffer.from('hunter2').toString('base64'));
    assert.equal(secret.stringData, undefined);
    assert.equal(secret.type, 'Opaque');
    const coordination = target.kc.makeApiClient(CoordinationV1Api);
    const lease = await coordination.createNamespacedLease({
      namespace: target.namespace,
      body: { metadata: { name: 'leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
    });
    const renewed = await coordination.replaceNamespacedLease({
      namespace: target.namespace,
      name: 'leader',
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } },
    });
    assert.equal(renewed.spec?.holderIdentity, 'b');
    await expectStatus(
      coordination.replaceNamespacedLease({
        namespace: target.namespace,
        name: 'leader',
        body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } },
      }),
      409,
      'Conflict',
    );
  });
});
