// Conformance: structural schemas of custom resources — pruning, x-kubernetes-preserve-unknown-fields, embedded resources, defaulting and validation (422 with causes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiextensionsV1Api, type V1CustomResourceDefinition, type V1JSONSchemaProps } from '@kubernetes/client-node';
import { expectStatus, merge, openTarget, type Target } from './target.ts';

type Obj = {
  metadata: Record<string, unknown> & { name: string };
  spec?: Record<string, unknown>;
};

interface Cause {
  reason?: string;
  field?: string;
  message?: string;
}

describe('Kubernetes API conformance: structural schemas of custom resources', () => {
  let target: Target;
  before(async () => {
    target = await openTarget();
  });
  after(async () => {
    await target.close();
  });

  const create = async (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) =>
    (await target.custom.createNamespacedCustomObject({
      ...target.widgets,
      namespace: target.namespace,
      body: { apiVersion: `${target.group}/v1`, kind: 'Widget', metadata: { name, ...metadata }, spec },
    })) as Obj;
  const get = async (name: string) =>
    (await target.custom.getNamespacedCustomObject({ ...target.widgets, namespace: target.namespace, name })) as Obj;

  it('drops fields the schema does not declare, in spec and in metadata, and keeps what x-kubernetes-preserve-unknown-fields keeps', async () => {
    const created = await create(
      'pruned',
      {
        size: 1,
        undeclared: 'dropped',
        owner: { team: 'a', nickname: 'dropped' },
        config: { anything: { deep: [1, { x: true }] }, declared: { kept: 'yes', notDeclared: 'dropped' } },
      },
      { bogus: 'dropped' },
    );
    assert.deepEqual(created.spec, {
      size: 1,
      owner: { team: 'a' },
      config: { anything: { deep: [1, { x: true }] }, declared: { kept: 'yes' } },
    });
    assert.equal(created.metadata.bogus, undefined);
    assert.deepEqual((await get('pruned')).spec, created.spec, 'what was stored is what came back');
    const patched = (await target.custom.patchNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, name: 'pruned', body: { spec: { size: 2, alsoUndeclared: 1 } } },
      merge(),
    )) as Obj;
    assert.equal(patched.spec?.size, 2);
    assert.equal(patched.spec?.alsoUndeclared, undefined, 'a patch is pruned too');
    const status = (await target.custom.patchNamespacedCustomObjectStatus(
      { ...target.widgets, namespace: target.namespace, name: 'pruned', body: { status: { phase: 'Up', undeclared: 1 } } },
      merge(),
    )) as Obj & { status?: Record<string, unknown> };
    assert.deepEqual(status.status, { phase: 'Up' }, 'and so is status');
  });

  it('decodes the metadata of an x-kubernetes-embedded-resource object as ObjectMeta and requires its apiVersion and kind', async () => {
    const template = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'inner', labels: { app: 'inner' }, bogus: 'dropped' },
      data: { key: 'value' },
    };
    const created = await create('embedded', { template });
    assert.deepEqual(created.spec?.template, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'inner', labels: { app: 'inner' } },
      data: { key: 'value' },
    });
    const status = await expectStatus(create('embedded-bad', { template: { apiVersion: 'v1', metadata: { name: 'x' } } }), 422, 'Invalid');
    const causes = (status.details?.causes ?? []) as Cause[];
    assert.ok(
      causes.some((c) => c.field === 'spec.template.kind' && c.reason === 'FieldValueRequired'),
      `causes: ${JSON.stringify(causes)}`,
    );
  });

  it('fills defaults where a field is absent, in objects the client sent, on create and on patch', async () => {
    const created = await create('defaulted', { policy: {} });
    assert.deepEqual(created.spec?.policy, { mode: 'Auto', retries: 3 });
    const explicit = await create('explicit', { policy: { mode: 'Manual' } });
    assert.deepEqual(explicit.spec?.policy, { mode: 'Manual', retries: 3 });
    const none = await create('no-policy', { size: 1 });
    assert.equal(none.spec?.policy, undefined, 'a default applies inside an object that is there, and creates no parent');
    const patched = (await target.custom.patchNamespacedCustomObject(
      { ...target.widgets, namespace: target.namespace, name: 'explicit', body: { spec: { policy: { mode: null } } } },
      merge(),
    )) as Obj;
    assert.deepEqual(patched.spec?.policy, { mode: 'Auto', retries: 3 }, 'a field a patch removes gets its default back');
  });

  const rules: Array<{ rule: string; spec: Record<string, unknown>; field: string; reason: string }> = [
    { rule: 'type', spec: { size: 'big' }, field: 'spec.size', reason: 'FieldValueTypeInvalid' },
    { rule: 'minimum', spec: { size: -1 }, field: 'spec.size', reason: 'FieldValueInvalid' },
    { rule: 'maximum', spec: { size: 1001 }, field: 'spec.size', reason: 'FieldValueInvalid' },
    { rule: 'exclusiveMinimum', spec: { ratio: 0 }, field: 'spec.ratio', reason: 'FieldValueInvalid' },
    { rule: 'enum', spec: { color: 'purple' }, field: 'spec.color', reason: 'FieldValueNotSupported' },
    { rule: 'pattern', spec: { name: 'Not_Valid' }, field: 'spec.name', reason: 'FieldValueInvalid' },
    { rule: 'maxLength', spec: { name: 'a-name-that-is-far-too-long' }, field: 'spec.name', reason: 'FieldValueTooLong' },
    { rule: 'required', spec: { owner: { email: 'x@example.com' } }, field: 'spec.owner.team', reason: 'FieldValueRequired' },
    { rule: 'x-kubernetes-int-or-string', spec: { port: true }, field: 'spec.port', reason: 'FieldValueTypeInvalid' },
    { rule: 'x-kubernetes-list-type: set', spec: { tags: ['a', 'a'] }, field: 'spec.tags[1]', reason: 'FieldValueDuplicate' },
  ];
  for (const { rule, spec, field, reason } of rules) {
    it(`rejects a value that breaks ${rule} with 422 Invalid, cause ${reason} on ${field}`, async () => {
      const name = `bad-${rule.replace(/[^a-z]+/gi, '-').toLowerCase()}`;
      const status = await expectStatus(create(name, spec), 422, 'Invalid');
      const causes = (status.details?.causes ?? []) as Cause[];
      assert.ok(
        causes.some((c) => c.field === field && c.reason === reason),
        `expected ${reason} on ${field}; causes: ${JSON.stringify(causes)}`,
      );
      assert.equal(status.details?.kind, 'Widget');
      assert.equal(status.details?.group, target.group);
      assert.equal(status.details?.name, name);
      assert.ok(status.message.startsWith(`Widget.${target.group} "${name}" is invalid: `), status.message);
      await expectStatus(get(name), 404, 'NotFound');
    });
  }

  it('lists every broken field of one object in one 422, and accepts the values the rules allow', async () => {
    const status = await expectStatus(create('many-bad', { size: 'big', color: 'purple', owner: {} }), 422, 'Invalid');
    const fields = ((status.details?.causes ?? []) as Cause[]).map((c) => c.field).sort();
    assert.deepEqual(fields, ['spec.color', 'spec.owner.team', 'spec.size']);
    assert.match(status.message, /is invalid: \[.+, .+, .+\]$/);
    const ok = await create('all-good', {
      size: 0,
      ratio: 0.5,
      color: 'red',
      name: 'ok-name',
      port: 'http',
      tags: ['a', 'b'],
      owner: { team: 't' },
    });
    assert.equal(ok.spec?.port, 'http');
    const numericPort = await create('numeric-port', { port: 8080 });
    assert.equal(numericPort.spec?.port, 8080);
  });

  it('validates status written through the status subresource', async () => {
    await create('status-checked', { size: 1 });
    const status = await expectStatus(
      target.custom.patchNamespacedCustomObjectStatus(
        { ...target.widgets, namespace: target.namespace, name: 'status-checked', body: { status: { replicas: 'three' } } },
        merge(),
      ),
      422,
      'Invalid',
    );
    assert.ok(
      ((status.details?.causes ?? []) as Cause[]).some((c) => c.field === 'status.replicas' && c.reason === 'FieldValueTypeInvalid'),
    );
  });

  it('refuses a CustomResourceDefinition whose schema is not structural, naming the field', async () => {
    const ext = target.kc.makeApiClient(ApiextensionsV1Api);
    const definition = (plural: string, schema: V1JSONSchemaProps | undefined): V1CustomResourceDefinition => ({
      metadata: { name: `${plural}.${target.group}` },
      spec: {
        group: target.group,
        scope: 'Namespaced',
        names: { plural, kind: plural.charAt(0).toUpperCase() + plural.slice(1, -1) },
        versions: [{ name: 'v1', served: true, storage: true, ...(schema === undefined ? {} : { schema: { openAPIV3Schema: schema } }) }],
      },
    });
    const untyped = await expectStatus(
      ext.createCustomResourceDefinition({
        body: definition('untypeds', {
          type: 'object',
          properties: { spec: { properties: { a: { type: 'string' } } }, list: { type: 'array' } },
        }),
      }),
      422,
      'Invalid',
    );
    const causes = (untyped.details?.causes ?? []) as Cause[];
    assert.ok(
      causes.some((c) => c.field === 'spec.versions[0].schema.openAPIV3Schema.properties[spec].type' && c.reason === 'FieldValueRequired'),
      JSON.stringify(causes),
    );
    assert.ok(
      causes.some((c) => c.field === 'spec.versions[0].schema.openAPIV3Schema.properties[list].items' && c.reason === 'FieldValueRequired'),
      JSON.stringify(causes),
    );
    const missing = await expectStatus(ext.createCustomResourceDefinition({ body: definition('schemalesses', undefined) }), 422, 'Invalid');
    assert.ok(
      ((missing.details?.causes ?? []) as Cause[]).some(
        (c) => c.field === 'spec.versions[0].schema.openAPIV3Schema' && c.reason === 'FieldValueRequired',
      ),
      JSON.stringify(missing.details),
    );
  });
});
