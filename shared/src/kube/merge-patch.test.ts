import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyMergePatch } from './merge-patch.ts';

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
