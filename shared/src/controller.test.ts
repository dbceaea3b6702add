import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataKeys, defineController, validateControllerSpec } from './controller.ts';
import { InvalidArgumentError } from './errors.ts';

describe('Function: defineController', () => {
  it('returns the definition unchanged, which validates', () => {
    const spec = {
      name: 'widgets',
      for: { group: 'example.com', version: 'v1', plural: 'widgets' },
      predicates: ['generation', 'labels'] as const,
    };
    const defined = defineController(spec);
    assert.equal(defined, spec);
    assert.equal(validateControllerSpec(defined), spec);
  });

  it('reports every problem of a bad definition at once, each naming its field', () => {
    let message = '';
    try {
      validateControllerSpec({
        name: 'Widgets!',
        for: { group: 'example.com', version: '1', plural: 'widgets' },
        predicates: ['generations', { name: 'x' }],
        watches: [{ resource: { group: '', version: 'v1', plural: 'configmaps' } }],
        finalizer: 'cleanup',
      });
    } catch (error) {
      assert.ok(error instanceof InvalidArgumentError);
      message = error.message;
    }
    for (const field of [
      'name:',
      'for: version "1"',
      'predicates[0]: unknown predicate "generations"',
      'predicates[1] (x)',
      'watches[0].map',
      'finalizer:',
    ]) {
      assert.ok(message.includes(field), `expected "${field}" in:\n${message}`);
    }
  });

  it('projects chosen data keys, so other keys do not change the projection', () => {
    const special = dataKeys(['special']);
    assert.deepEqual(special({ data: { special: '1', other: 'a' } }), special({ data: { special: '1', other: 'b' } }));
    assert.notDeepEqual(special({ data: { special: '1' } }), special({ data: { special: '2' } }));
  });
});
