// Conformance: unknown fields and the fieldValidation query parameter (Ignore, Warn with a Warning header, Strict) for custom resources and built-in kinds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectStatus, merge, openTarget, rawRequest, type Target, warningsOf } from './target.ts';

type Obj = { spec?: Record<string, unknown>; data?: Record<string, string>; bogus?: unknown; metadata: Record<string, unknown> };

describe('Kubernetes API conformance: fieldValidation', () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  const widget = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: `${target.group}/v1`,
    kind: 'Widget',
    metadata: { name },
    spec,
  });
  const createWidget = (name: string, spec: Record<string, unknown>, fieldValidation?: string) =>
    target.custom.createNamespacedCustomObjectWithHttpInfo({
      ...target.widgets,
      namespace: target.namespace,
      body: widget(name, spec),
      ...(fieldValidation === undefined ? {} : { fieldValidation }),
    });

  it('warns about each unknown field of a custom resource by default (Warn), drops it, and stores the rest', async () => {
    const response = await createWidget('warned', { size: 1, bogus: 1, owner: { team: 'a', extra: 2 } });
    assert.equal(response.httpStatusCode, 201);
    assert.deepEqual(warningsOf(response.headers).sort(), ['unknown field "spec.bogus"', 'unknown field "spec.owner.extra"']);
    assert.deepEqual((response.data as Obj).spec, { size: 1, owner: { team: 'a' } });
  });

  it('drops unknown fields without a word with fieldValidation=Ignore', async () => {
    const response = await createWidget('ignored', { size: 1, bogus: 1 }, 'Ignore');
    assert.deepEqual(warningsOf(response.headers), []);
    assert.deepEqual((response.data as Obj).spec, { size: 1 });
  });

  it('refuses a custom resource with unknown fields under Strict: 400 on create naming every field, 422 on a patch', async () => {
    const status = await expectStatus(createWidget('strict', { size: 1, bogus: 1, other: 2 }, 'Strict'), 400, 'BadRequest');
    assert.match(status.message, /strict decoding error: /);
    assert.match(status.message, /unknown field "spec\.bogus"/);
    assert.match(status.message, /unknown field "spec\.other"/);
    await expectStatus(
      target.custom.getNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name: 'strict' }),
      404,
      'NotFound',
    );
    await createWidget('strict-patched', { size: 1 });
    const patch = await expectStatus(
      target.custom.patchNamespacedCustomObject(
        { ...target.widgets, namespace: target.namespace, name: 'strict-patched', body: { spec: { bogus: 1 } }, fieldValidation: 'Strict' },
        merge(),
      ),
      422,
      'Invalid',
    );
    const causes = (patch.details?.causes ?? []) as Array<{ field?: string; message?: string }>;
    assert.equal(causes[0]?.field, 'patch');
    assert.match(causes[0]?.message ?? '', /unknown field "spec\.bogus"/);
  });

  it('handles unknown fields of a built-in kind the same way: a Warning by default, 400 under Strict, nothing under Ignore', async () => {
    const path = `/api/v1/namespaces/${target.namespace}/configmaps`;
    const body = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, bogusMeta: 1 },
      data: { a: '1' },
      bogus: true,
    });
    const warned = await rawRequest(target.kc, 'POST', path, body('cm-warned'));
    assert.equal(warned.code, 201);
    assert.deepEqual(warningsOf(warned.headers).sort(), ['unknown field "bogus"', 'unknown field "metadata.bogusMeta"']);
    assert.equal((warned.body as Obj).bogus, undefined);
    assert.deepEqual((warned.body as Obj).data, { a: '1' });
    const strict = await rawRequest(target.kc, 'POST', `${path}?fieldValidation=Strict`, body('cm-strict'));
    assert.equal(strict.code, 400);
    assert.equal(strict.body.reason, 'BadRequest');
    assert.match(String(strict.body.message), /strict decoding error: .*unknown field "bogus"/);
    const ignored = await rawRequest(target.kc, 'POST', `${path}?fieldValidation=Ignore`, body('cm-ignored'));
    assert.equal(ignored.code, 201);
    assert.deepEqual(warningsOf(ignored.headers), []);
    const patched = await target.core.patchNamespacedConfigMapWithHttpInfo(
      { namespace: target.namespace, name: 'cm-warned', body: { data: { b: '2' }, bogus: 1 } },
      merge(),
    );
    assert.deepEqual(warningsOf(patched.headers), ['unknown field "bogus"']);
    assert.deepEqual(patched.data.data, { a: '1', b: '2' });
  });

  it('answers a fieldValidation it does not know with 422', async () => {
    const response = await rawRequest(target.kc, 'POST', `/api/v1/namespaces/${target.namespace}/configmaps?fieldValidation=Loud`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cm-loud' },
    });
    assert.equal(response.code, 422);
    assert.equal(response.body.reason, 'Invalid');
    assert.equal((response.body.details as { causes?: Array<{ field?: string }> }).causes?.[0]?.field, 'fieldValidation');
  });
});
