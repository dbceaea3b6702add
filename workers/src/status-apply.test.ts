import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredObject } from '@conveyor/shared';
import { appliedStatus, layChanges, projectFields, statusToApply } from './status-apply.ts';

const ready = { type: 'Ready', status: 'True', reason: 'Up' };
const synced = { type: 'Synced', status: 'False', reason: 'Behind' };

/** A stored object whose status `ours` is what manager `m` applied (FieldsV1 as kube-apiserver writes it). */
function stored(status: Record<string, unknown>, fieldsV1?: Record<string, unknown>): StoredObject {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: {
      name: 'w',
      namespace: 'default',
      resourceVersion: '7',
      managedFields:
        fieldsV1 === undefined ? [] : [{ manager: 'm', operation: 'Apply', subresource: 'status', fieldsType: 'FieldsV1', fieldsV1 }],
    },
    status,
  };
}

const readyFields = {
  'f:status': {
    'f:observedGeneration': {},
    'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:type': {}, 'f:status': {}, 'f:reason': {} } },
  },
};

describe('Function: projectFields', () => {
  it('keeps only the fields, list-map items and set values of a FieldsV1 set', () => {
    const value = { a: 1, b: { c: 2, d: 3 }, list: [ready, synced], tags: ['x', 'y'] };
    const fields = {
      'f:a': {},
      'f:b': { 'f:c': {} },
      'f:list': { 'k:{"type":"Synced"}': { '.': {}, 'f:type': {}, 'f:status': {} } },
      'f:tags': { 'v:"y"': {} },
    };
    assert.deepEqual(projectFields(value, fields), { a: 1, b: { c: 2 }, list: [{ type: 'Synced', status: 'False' }], tags: ['y'] });
  });
});

describe('Function: appliedStatus', () => {
  it('reads back what the manager applied to /status, and nothing for another manager', () => {
    const object = stored({ observedGeneration: 2, conditions: [synced, ready], lastAudited: 'x' }, readyFields);
    assert.deepEqual(appliedStatus(object, 'm'), { observedGeneration: 2, conditions: [ready] });
    assert.deepEqual(appliedStatus(object, 'other'), {});
  });
});

describe('Function: layChanges', () => {
  it('merges objects, removes nulls, merges lists of typed items by type and replaces other lists', () => {
    assert.deepEqual(
      layChanges({ a: 1, b: { c: 1 }, conditions: [ready], tags: ['x'] }, { a: null, b: { d: 2 }, conditions: [synced], tags: ['y'] }),
      { b: { c: 1, d: 2 }, conditions: [ready, synced], tags: ['y'] },
    );
  });
});

describe('Function: statusToApply', () => {
  const cases: [string, StoredObject, Record<string, unknown>, Record<string, unknown> | undefined][] = [
    [
      'nothing when every field already has its value',
      stored({ observedGeneration: 2, conditions: [synced, ready] }),
      { observedGeneration: 2, conditions: [ready] },
      undefined,
    ],
    [
      'the change over what it applied before',
      stored({ observedGeneration: 2, conditions: [synced, ready] }, readyFields),
      { observedGeneration: 3 },
      { observedGeneration: 3, conditions: [ready] },
    ],
    [
      'a write when a field it applied before is removed',
      stored({ observedGeneration: 2, conditions: [ready] }, readyFields),
      { conditions: null },
      { observedGeneration: 2 },
    ],
    ['only its own condition, never another manager’s', stored({ conditions: [synced] }), { conditions: [ready] }, { conditions: [ready] }],
  ];
  for (const [what, object, changes, expected] of cases) {
    it(`applies ${what}`, () => {
      assert.deepEqual(statusToApply(object, 'm', changes), expected);
    });
  }
});
