import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { TargetIndex } from './target-index.ts';

describe('Class: TargetIndex', () => {
  it('finds the rows that hold a value, follows a row that moves to another value or to none, and forgets removed rows', () => {
    const index = new TargetIndex(4);
    index.set(0, 'default/red');
    index.set(1, 'default/red');
    index.set(7, 'default/blue');
    assert.deepEqual([...index.rows('default/red')].sort(), [0, 1]);
    index.set(1, 'default/blue');
    index.set(0, undefined);
    assert.deepEqual([...index.rows('default/red')], []);
    assert.deepEqual([...index.rows('default/blue')].sort(), [1, 7]);
    index.remove(7);
    assert.deepEqual([...index.rows('default/blue')], [1]);
    assert.equal(index.countOf('default/blue'), 1);
    assert.equal(index.size, 1, 'a value no row holds is forgotten');
  });

  it('agrees with a plain Map of Sets under any sequence of sets and removals', () => {
    const op = fc.record({
      row: fc.integer({ min: 0, max: 40 }),
      value: fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: undefined }),
      remove: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const index = new TargetIndex(2);
        const model = new Map<number, string>();
        for (const { row, value, remove } of ops) {
          if (remove) {
            index.remove(row);
            model.delete(row);
          } else {
            index.set(row, value);
            if (value === undefined) model.delete(row);
            else model.set(row, value);
          }
        }
        for (const value of ['a', 'b', 'c', 'd']) {
          const expected = [...model.entries()]
            .filter(([, v]) => v === value)
            .map(([r]) => r)
            .sort((x, y) => x - y);
          assert.deepEqual(
            [...index.rows(value)].sort((x, y) => x - y),
            expected,
          );
          assert.equal(index.countOf(value), expected.length);
        }
      }),
    );
  });
});
