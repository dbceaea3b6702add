// Server-side apply's merge and field sets, checked against structured-merge-diff's rules and as properties.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mergeApplied, removeUnowned } from './apply-merge.ts';
import { compareObjects, decodeFieldsV1, describePath, encodeFieldsV1, toFieldSet } from './field-set.ts';
import type { JsonObject } from './status.ts';
import { compileSchema, DEDUCED } from './structural-schema.ts';

const schema = compileSchema({
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' }, value: { type: 'integer' } } },
        },
        tags: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
        args: { type: 'array', items: { type: 'string' } },
        selector: { type: 'object', 'x-kubernetes-map-type': 'atomic', additionalProperties: { type: 'string' } },
      },
    },
  },
});

const item = (name: string, value?: number) => ({ name, ...(value === undefined ? {} : { value }) });

describe('Function: mergeApplied', () => {
  it('merges list-map items by key, keeping live-only items where they were and the applied order for shared ones', () => {
    const live = { spec: { items: [item('a', 1), item('b', 2), item('c', 3)] } };
    const merged = mergeApplied(live, { spec: { items: [item('c', 30), item('a')] } }, schema);
    assert.deepEqual((merged.spec as JsonObject).items, [item('b', 2), item('c', 30), item('a', 1)]);
  });

  it('adds set values once, replaces atomic lists and atomic maps whole', () => {
    const live = { spec: { tags: ['x', 'y'], args: ['1', '2'], selector: { a: '1', b: '2' } } };
    const merged = mergeApplied(live, { spec: { tags: ['y', 'z'], args: ['3'], selector: { c: '3' } } }, schema);
    assert.deepEqual(merged.spec, { tags: ['x', 'y', 'z'], args: ['3'], selector: { c: '3' } });
  });

  it('gives the configuration itself when applied to an empty object, and is idempotent', () => {
    const object = fc.dictionary(
      fc.string().filter((k) => k !== '__proto__'),
      fc.jsonValue() as fc.Arbitrary<unknown>,
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(object, object, (live, config) => {
        assert.deepEqual(mergeApplied({}, config, DEDUCED), config);
        const once = mergeApplied(live, config, DEDUCED);
        assert.deepEqual(mergeApplied(once, config, DEDUCED), once);
      }),
    );
  });
});

describe('Function: removeUnowned', () => {
  it('removes a dropped list item unless another manager owns something in it, and never its key', () => {
    const obj = { spec: { items: [item('a', 1), item('b', 2)] } };
    const applied = toFieldSet(obj, schema, true);
    const b = [...applied].filter((p) => p.includes('"b"'));
    const kept = new Set([...applied].filter((p) => p.endsWith('f:value') && p.includes('"a"')));
    removeUnowned(obj, new Set(b.concat([...applied].filter((p) => p.includes('"a"') && !p.endsWith('f:value')))), kept, schema);
    assert.deepEqual(obj.spec.items, [item('a', 1)]);
  });
});

describe('Function: toFieldSet and compareObjects', () => {
  it('names list-map items by key and set items by value, as FieldsV1 and as conflict paths', () => {
    const set = toFieldSet({ spec: { items: [item('a', 1)], tags: ['t'] } }, schema, true);
    assert.deepEqual(encodeFieldsV1(set), {
      'f:spec': { 'f:items': { 'k:{"name":"a"}': { '.': {}, 'f:name': {}, 'f:value': {} } }, 'f:tags': { 'v:"t"': {} } },
    });
    assert.deepEqual([...set].map(describePath).sort(), [
      '.spec.items[name="a"]',
      '.spec.items[name="a"].name',
      '.spec.items[name="a"].value',
      '.spec.tags[="t"]',
    ]);
  });

  it('reads back the FieldsV1 it writes', () => {
    const object = fc.dictionary(
      fc.string({ minLength: 1 }).filter((k) => k !== '__proto__'),
      fc.jsonValue() as fc.Arbitrary<unknown>,
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(object, (obj) => {
        const set = toFieldSet({ spec: obj }, DEDUCED, false);
        assert.deepEqual(decodeFieldsV1(encodeFieldsV1(set)), set);
      }),
    );
  });

  it('reports new subtrees with their parents as added and changed leaves as modified', () => {
    const diff = compareObjects({ spec: { tags: ['t'] } }, { spec: { tags: ['t'], items: [item('a', 1)] } }, schema);
    assert.deepEqual([...diff.added].map(describePath).sort(), [
      '.spec.items',
      '.spec.items[name="a"]',
      '.spec.items[name="a"].name',
      '.spec.items[name="a"].value',
    ]);
    assert.deepEqual([...diff.modified], []);
    const changed = compareObjects({ spec: { items: [item('a', 1)] } }, { spec: { items: [item('a', 2)] } }, schema);
    assert.deepEqual([...changed.modified].map(describePath), ['.spec.items[name="a"].value']);
  });
});
