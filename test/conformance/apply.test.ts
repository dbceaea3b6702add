// Conformance: server-side apply — creation, managedFields per manager, conflicts (409) and force, list-map and set merging, the status subresource, removal of fields a manager stops applying.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apply, expectStatus, merge, openTarget, rawRequest, type Target } from './target.ts';

interface Entry {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

type Obj = {
  metadata: { name: string; resourceVersion: string; managedFields?: Entry[] };
  spec?: Record<string, unknown>;
  status?: { conditions?: Array<Record<string, unknown>> } & Record<string, unknown>;
  data?: Record<string, string>;
};

interface Cause {
  reason?: string;
  message?: string;
  field?: string;
}

describe('Kubernetes API conformance: server-side apply', () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  const config = (name: string, extra: Record<string, unknown>) => ({
    apiVersion: `${target.group}/v1`,
    kind: 'Widget',
    metadata: { name },
    ...extra,
  });
  const applyWidget = async (
    name: string,
    manager: string,
    extra: Record<string, unknown>,
    options: { force?: boolean; status?: boolean } = {},
  ) => {
    const params = {
      ...target.widgets,
      namespace: target.namespace,
      name,
      body: config(name, extra),
      fieldManager: manager,
      force: options.force ?? false,
    };
    return (await (options.status
      ? target.custom.patchNamespacedCustomObjectStatus(params, apply())
      : target.custom.patchNamespacedCustomObject(params, apply()))) as Obj;
  };
  const entry = (obj: Obj, manager: string) => obj.metadata.managedFields?.find((e) => e.manager === manager);

  it('creates an object (201) owned by an Apply manager, and an identical apply changes nothing', async () => {
    const response = await target.custom.patchNamespacedCustomObjectWithHttpInfo(
      {
        ...target.widgets,
        namespace: target.namespace,
        name: 'applied',
        body: config('applied', { spec: { size: 1, color: 'red' } }),
        fieldManager: 'alpha',
      },
      apply(),
    );
    assert.equal(response.httpStatusCode, 201);
    const created = response.data as Obj;
    assert.deepEqual(created.spec, { size: 1, color: 'red' });
    const owned = entry(created, 'alpha');
    assert.equal(owned?.operation, 'Apply');
    assert.deepEqual(owned?.fieldsV1, { 'f:spec': { 'f:color': {}, 'f:size': {} } });
    const again = await applyWidget('applied', 'alpha', { spec: { size: 1, color: 'red' } });
    assert.equal(again.metadata.resourceVersion, created.metadata.resourceVersion, 'no write when nothing changes');
  });

  it('answers an apply that changes another manager’s field with 409 Conflict naming manager and field; force takes the field over', async () => {
    await applyWidget('contested', 'alpha', { spec: { size: 1, color: 'red' } });
    const status = await expectStatus(applyWidget('contested', 'beta', { spec: { size: 2 } }), 409, 'Conflict');
    assert.deepEqual(status.details?.causes, [{ reason: 'FieldManagerConflict', message: 'conflict with "alpha"', field: '.spec.size' }]);
    assert.equal(status.message, 'Apply failed with 1 conflict: conflict with "alpha": .spec.size');
    const shared = await applyWidget('contested', 'beta', { spec: { size: 1 } });
    assert.deepEqual(entry(shared, 'beta')?.fieldsV1, { 'f:spec': { 'f:size': {} } }, 'applying the same value shares the field');
    assert.deepEqual(entry(shared, 'alpha')?.fieldsV1, { 'f:spec': { 'f:color': {}, 'f:size': {} } });
    const forced = await applyWidget('contested', 'beta', { spec: { size: 2 } }, { force: true });
    assert.equal(forced.spec?.size, 2);
    assert.deepEqual(entry(forced, 'alpha')?.fieldsV1, { 'f:spec': { 'f:color': {} } }, 'the forced field leaves its old owner');
  });

  it('counts fields an update (merge patch) changed as that writer’s: an apply that changes them conflicts with "writer" using the apiVersion', async () => {
    await applyWidget('updated', 'alpha', { spec: { color: 'red' } });
    await target.custom.patchNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, name: 'updated', body: { spec: { color: 'green' } }, fieldManager: 'editor' },
      merge(),
    );
    const status = await expectStatus(applyWidget('updated', 'alpha', { spec: { color: 'red' } }), 409, 'Conflict');
    assert.deepEqual(status.details?.causes, [
      { reason: 'FieldManagerConflict', message: `conflict with "editor" using ${target.group}/v1`, field: '.spec.color' },
    ]);
  });

  it('removes a field its manager stops applying, unless another manager still owns it', async () => {
    await applyWidget('shrinking', 'alpha', { spec: { size: 3, secret: 's', name: 'kept' } });
    await applyWidget('shrinking', 'beta', { spec: { name: 'kept' } });
    const after = await applyWidget('shrinking', 'alpha', { spec: { size: 3 } });
    assert.deepEqual(after.spec, { size: 3, name: 'kept' });
  });

  it('merges status.conditions item by item (listType map, key type) between managers applying /status', async () => {
    await applyWidget('conditioned', 'alpha', { spec: { size: 1 } });
    await applyWidget(
      'conditioned',
      'ready-controller',
      { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Up' }] } },
      { status: true },
    );
    const both = await applyWidget(
      'conditioned',
      'sync-controller',
      { status: { conditions: [{ type: 'Synced', status: 'False' }] } },
      { status: true },
    );
    assert.deepEqual(both.status?.conditions, [
      { type: 'Ready', status: 'True', reason: 'Up' },
      { type: 'Synced', status: 'False' },
    ]);
    const ready = entry(both, 'ready-controller');
    assert.equal(ready?.subresource, 'status');
    assert.deepEqual(ready?.fieldsV1, {
      'f:status': { 'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:reason': {}, 'f:status': {}, 'f:type': {} } } },
    });
    const changed = await applyWidget(
      'conditioned',
      'ready-controller',
      { status: { conditions: [{ type: 'Ready', status: 'False' }] } },
      { status: true },
    );
    assert.deepEqual(changed.status?.conditions, [
      { type: 'Ready', status: 'False' },
      { type: 'Synced', status: 'False' },
    ]);
    const status = await expectStatus(
      applyWidget('conditioned', 'ready-controller', { status: { conditions: [{ type: 'Synced', status: 'True' }] } }, { status: true }),
      409,
      'Conflict',
    );
    assert.deepEqual(status.details?.causes, [
      {
        reason: 'FieldManagerConflict',
        message: 'conflict with "sync-controller" with subresource "status"',
        field: '.status.conditions[type="Synced"].status',
      },
    ]);
  });

  it('refuses an apply whose metadata.resourceVersion is stale with 409, on the main resource and on /status', async () => {
    const first = await applyWidget('preconditioned', 'alpha', { spec: { size: 1 } });
    const stale = first.metadata.resourceVersion;
    await applyWidget('preconditioned', 'beta', { status: { phase: 'Moved' } }, { status: true });
    const withRv = (extra: Record<string, unknown>) => ({ metadata: { name: 'preconditioned', resourceVersion: stale }, ...extra });
    const params = (extra: Record<string, unknown>) => ({
      ...target.widgets,
      namespace: target.namespace,
      name: 'preconditioned',
      body: { ...config('preconditioned', {}), ...withRv(extra) },
      fieldManager: 'alpha',
    });
    await expectStatus(target.custom.patchNamespacedCustomObject(params({ spec: { size: 2 } }), apply()), 409, 'Conflict');
    await expectStatus(target.custom.patchNamespacedCustomObjectStatus(params({ status: { phase: 'Stale' } }), apply()), 409, 'Conflict');
    const current = (await target.custom.getNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      name: 'preconditioned',
    })) as Obj;
    assert.equal(current.spec?.size, 1);
    assert.equal(current.status?.phase, 'Moved');
  });

  it('ignores status applied to the main resource and spec applied to /status', async () => {
    const main = await applyWidget('split', 'alpha', { spec: { size: 1 }, status: { phase: 'ignored' } });
    assert.equal(main.status, undefined);
    assert.deepEqual(entry(main, 'alpha')?.fieldsV1, { 'f:spec': { 'f:size': {} } });
    const status = await applyWidget('split', 'beta', { spec: { size: 9 }, status: { phase: 'Ready' } }, { status: true });
    assert.equal(status.spec?.size, 1);
    assert.equal(status.status?.phase, 'Ready');
  });

  it('merges a listType set by value', async () => {
    await applyWidget('tagged', 'alpha', { spec: { tags: ['a', 'b'] } });
    const merged = await applyWidget('tagged', 'beta', { spec: { tags: ['c'] } });
    assert.deepEqual(merged.spec?.tags, ['a', 'b', 'c']);
    const dropped = await applyWidget('tagged', 'alpha', { spec: { tags: ['b'] } });
    assert.deepEqual(dropped.spec?.tags, ['b', 'c']);
  });

  it('applies a built-in kind: a ConfigMap’s data keys merge and belong to who applied them', async () => {
    const cm = (data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied-cm' }, data });
    const params = (manager: string, data: Record<string, string>) => ({
      namespace: target.namespace,
      name: 'applied-cm',
      body: cm(data),
      fieldManager: manager,
    });
    await target.core.patchNamespacedConfigMap(params('alpha', { a: '1', shared: 'x' }), apply());
    const both = await target.core.patchNamespacedConfigMap(params('beta', { b: '2' }), apply());
    assert.deepEqual(both.data, { a: '1', shared: 'x', b: '2' });
    const after = await target.core.patchNamespacedConfigMap(params('alpha', { shared: 'x' }), apply());
    assert.deepEqual(after.data, { shared: 'x', b: '2' });
  });

  it('requires a fieldManager (422), the URL’s apiVersion (400), and fields the schema declares (500, as kube-apiserver answers)', async () => {
    const path = `/apis/${target.group}/v1/namespaces/${target.namespace}/widgets/refused`;
    const noManager = await rawRequest(target.kc, 'PATCH', path, config('refused', { spec: { size: 1 } }), 'application/apply-patch+yaml');
    assert.equal(noManager.code, 422);
    assert.equal((noManager.body.details as { causes?: Cause[] }).causes?.[0]?.field, 'fieldManager');
    const wrongVersion = await rawRequest(
      target.kc,
      'PATCH',
      `${path}?fieldManager=alpha`,
      { ...config('refused', {}), apiVersion: `${target.group}/v2` },
      'application/apply-patch+yaml',
    );
    assert.equal(wrongVersion.code, 400);
    assert.equal(String(wrongVersion.body.message), `invalid object type: ${target.group}/v2, Kind=Widget`);
    const undeclared = await rawRequest(
      target.kc,
      'PATCH',
      `${path}?fieldManager=alpha`,
      config('refused', { spec: { bogus: 1 } }),
      'application/apply-patch+yaml',
    );
    assert.equal(undeclared.code, 500);
    assert.match(String(undeclared.body.message), /failed to create typed patch object .*\.spec\.bogus: field not declared in schema/);
    const yaml = await rawRequest(
      target.kc,
      'PATCH',
      `${path}?fieldManager=alpha`,
      `apiVersion: ${target.group}/v1\nkind: Widget\nmetadata:\n  name: refused\nspec:\n  size: 4\n`,
      'application/apply-patch+yaml',
    );
    assert.equal(yaml.code, 201, 'a YAML configuration creates the object');
    assert.equal((yaml.body.spec as { size?: number }).size, 4);
  });
});
