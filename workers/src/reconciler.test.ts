import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, type KubeObject } from '@conveyor/shared';
import { checkController, defineController } from './reconciler.ts';

interface Widget extends KubeObject {
  spec?: { color?: string };
  status?: { observedGeneration?: number };
}

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
    assert.deepEqual(controller.ref, { group: 'example.com', version: 'v1', resource: 'widgets' });
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
