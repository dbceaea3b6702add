import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StatusCollector } from './status-patch.ts';

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
