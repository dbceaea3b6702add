import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkController, dataKeys, defineController, validateControllerSpec } from './controller.ts';
import { InvalidArgumentError } from './errors.ts';
import type { KubeObject } from './kube/types.ts';

interface Widget extends KubeObject {
  spec?: { color?: string };
  status?: { observedGeneration?: number };
}

describe('Function: validateControllerSpec', () => {
  it('returns the watch side of a definition unchanged when it is valid', () => {
    const spec = {
      name: 'widgets',
      for: { group: 'example.com', version: 'v1', plural: 'widgets' },
      predicates: ['generation', 'labels'] as const,
    };
    assert.equal(validateControllerSpec(spec), spec);
  });

  it('reports every problem of a bad definition at once, each naming its field', () => {
    let message = '';
    try {
      validateControllerSpec({
        name: 'Widgets!',
        for: { group: 'example.com', version: '1', plural: 'widgets' },
        predicates: ['generations', { name: 'x' }],
        owns: [{ group: '', version: 'v1', plural: 'configmaps', labels: 3, predicates: ['labelz'] }],
        watches: [
          { resource: { group: '', version: 'v1', plural: 'configmaps' } },
          { resource: { group: '', version: 'v1', plural: 'configmaps' }, index: { label: 'a b' } },
          { resource: { group: '', version: 'v1', plural: 'secrets' }, index: { annotation: 'x' }, map: () => [] },
        ],
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
      'owns[0].labels: must be a non-empty string',
      'owns[0].predicates[0]: unknown predicate "labelz"',
      'watches[0].map',
      'watches[1].index: must be { label',
      'watches[2]: give map or index, not both',
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

describe('Function: defineController', () => {
  it('returns the definition with its resource reference, typed end to end', () => {
    const controller = defineController<Widget, { prefix: string }>({
      name: 'widgets',
      for: { group: 'example.com', version: 'v1', plural: 'widgets' },
      finalizer: 'example.com/cleanup',
      setup: () => ({ prefix: 'w' }),
      reconcile(widget, ctx) {
        // Compile-time: spec and status keep their types, deps is what setup returns.
        const color: string | undefined = widget.spec?.color;
        ctx.patchStatus({ observedGeneration: widget.metadata.generation ?? 0 });
        ctx.log.info({ color, prefix: ctx.deps.prefix });
        return undefined;
      },
      finalize() {},
    });
    assert.deepEqual(controller.for, { group: 'example.com', version: 'v1', plural: 'widgets' });
    assert.equal(controller.name, 'widgets');
  });

  it('names every problem at once', () => {
    assert.throws(
      () =>
        checkController({
          name: 'Widgets!',
          for: { group: 'example.com', version: 'one', plural: 'widgets' },
          finalizer: 'cleanup',
          reconcile: 'not a function',
        }),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        /name:/.test(error.message) &&
        /version "one"/.test(error.message) &&
        /finalizer: must be a qualified name/.test(error.message) &&
        /reconcile: must be a function/.test(error.message) &&
        /finalize: missing, but finalizer is set/.test(error.message),
    );
  });

  it('refuses finalize without a finalizer', () => {
    assert.throws(
      () => checkController({ name: 'w', for: { group: '', version: 'v1', plural: 'configmaps' }, reconcile() {}, finalize() {} }),
      /finalizer: missing, but finalize is set/,
    );
  });
});
