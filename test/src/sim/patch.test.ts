import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.ts';
import { ApiError } from './status.ts';

describe('Function: applyMergePatch (RFC 7386)', () => {
  it('merges objects, deletes on null, replaces lists and scalars', () => {
    const target = { a: { b: 1, c: 2 }, list: [1, 2], keep: true };
    assert.deepEqual(applyMergePatch(target, { a: { c: null, d: 3 }, list: [3] }), { a: { b: 1, d: 3 }, list: [3], keep: true });
  });

  it('leaves the target untouched (the store shares frozen objects)', () => {
    fc.assert(
      fc.property(fc.object(), fc.object(), (target, patch) => {
        const before = JSON.stringify(target);
        applyMergePatch(target, patch);
        assert.equal(JSON.stringify(target), before);
      }),
    );
  });
});

describe('Function: applyJsonPatch (RFC 6902)', () => {
  const doc = { metadata: { finalizers: ['a/x', 'b/y'], resourceVersion: '7' }, spec: { n: 1 } };

  it('applies add, remove, replace, move, copy and a passing test', () => {
    const out = applyJsonPatch(doc, [
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'remove', path: '/metadata/finalizers/0' },
      { op: 'add', path: '/metadata/finalizers/-', value: 'c/z' },
      { op: 'replace', path: '/spec/n', value: 2 },
      { op: 'copy', from: '/spec/n', path: '/spec/m' },
      { op: 'move', from: '/spec/m', path: '/spec/k' },
    ]);
    assert.deepEqual(out, { metadata: { finalizers: ['b/y', 'c/z'], resourceVersion: '7' }, spec: { n: 2, k: 2 } });
    assert.deepEqual(doc.metadata.finalizers, ['a/x', 'b/y'], 'the input is not modified');
  });

  it('answers a failing test, or a path that is not there, with 422 Invalid', () => {
    for (const patch of [
      [{ op: 'test', path: '/metadata/resourceVersion', value: '6' }],
      [{ op: 'remove', path: '/spec/absent' }],
      [{ op: 'replace', path: '/x/y', value: 1 }],
    ]) {
      assert.throws(
        () => applyJsonPatch(doc, patch),
        (error: unknown) => error instanceof ApiError && error.code === 422 && error.reason === 'Invalid',
      );
    }
  });

  it('answers a malformed patch with 400 BadRequest', () => {
    assert.throws(
      () => applyJsonPatch(doc, { op: 'add' }),
      (error: unknown) => error instanceof ApiError && error.code === 400,
    );
    assert.throws(() => applyJsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), /unexpected operation/);
  });
});

describe('Function: applyStrategicMergePatch', () => {
  const deployment = {
    metadata: { finalizers: ['a/x'], labels: { app: 'web' } },
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'web', image: 'web:1', env: [{ name: 'A', value: '1' }] },
            { name: 'side', image: 'side:1' },
          ],
          tolerations: [{ key: 'a' }],
        },
      },
    },
  };
  const containers = (obj: unknown) => (obj as typeof deployment).spec.template.spec.containers;

  it('merges list items by their merge key and keeps the others', () => {
    const out = applyStrategicMergePatch(deployment, {
      spec: { template: { spec: { containers: [{ name: 'web', image: 'web:2', env: [{ name: 'B', value: '2' }] }] } } },
    });
    assert.deepEqual(containers(out), [
      {
        name: 'web',
        image: 'web:2',
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
      { name: 'side', image: 'side:1' },
    ]);
  });

  it('deletes an item with $patch: delete and replaces atomic lists whole', () => {
    const out = applyStrategicMergePatch(deployment, {
      spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }], tolerations: [{ key: 'b' }] } } },
    });
    assert.deepEqual(
      containers(out).map((c) => c.name),
      ['web'],
    );
    assert.deepEqual((out as typeof deployment).spec.template.spec.tolerations, [{ key: 'b' }]);
  });

  it('adds finalizers as a set and removes them with $deleteFromPrimitiveList', () => {
    const added = applyStrategicMergePatch(deployment, { metadata: { finalizers: ['a/x', 'b/y'] } }) as typeof deployment;
    assert.deepEqual(added.metadata.finalizers, ['a/x', 'b/y']);
    const removed = applyStrategicMergePatch(added, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a/x'] } }) as typeof deployment;
    assert.deepEqual(removed.metadata.finalizers, ['b/y']);
  });

  it('replaces a map with $patch: replace and drops a key set to null', () => {
    const out = applyStrategicMergePatch(deployment, {
      metadata: { labels: { $patch: 'replace', tier: 'gold' }, finalizers: null },
    }) as typeof deployment;
    assert.deepEqual(out.metadata, { labels: { tier: 'gold' } });
  });
});
