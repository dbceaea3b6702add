import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyMergePatch, StatusCollector } from './status-patch.ts';

describe('Function: applyMergePatch (RFC 7386)', () => {
  const table: [string, unknown, unknown, unknown][] = [
    ['replaces a scalar', { a: 'b' }, { a: 'c' }, { a: 'c' }],
    ['adds a field', { a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    ['deletes with null', { a: 'b' }, { a: null }, {}],
    ['replaces an array whole', { a: [1, 2] }, { a: [3] }, { a: [3] }],
    ['merges nested objects', { a: { b: 1, c: 2 } }, { a: { c: 3 } }, { a: { b: 1, c: 3 } }],
    ['builds from nothing', undefined, { a: { b: null, c: 1 } }, { a: { c: 1 } }],
  ];
  for (const [what, target, patch, expected] of table) {
    it(what, () => assert.deepEqual(applyMergePatch(target, patch), expected));
  }
});

describe('Class: StatusCollector', () => {
  it('has nothing to write when no change was collected, or when the changes leave status as it is', () => {
    const collector = new StatusCollector();
    assert.equal(collector.pendingFor({ phase: 'Ready' }), undefined);
    collector.add({ phase: 'Ready' });
    assert.equal(collector.pendingFor({ phase: 'Ready', observedGeneration: 2 }), undefined);
  });

  it('combines several changes into one patch, later ones winning, deletions kept', () => {
    const collector = new StatusCollector();
    collector.add({ phase: 'Pending', detail: { a: 1 } });
    collector.add({ phase: 'Ready', detail: { b: 2 }, old: null });
    assert.deepEqual(collector.pendingFor({ old: 'x' }), { phase: 'Ready', detail: { a: 1, b: 2 }, old: null });
  });

  it('rejects a patch that is not an object', () => {
    assert.throws(() => new StatusCollector().add('Ready'), /patchStatus needs an object, got string/);
  });
});
