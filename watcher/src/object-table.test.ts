import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLUMNS, ObjectTable } from './object-table.ts';

describe('ObjectTable', () => {
  it('keeps rows apart while growing past its first chunks and reuses rows of deleted keys', () => {
    const table = new ObjectTable();
    for (let i = 0; i < 10_000; i++) table.set(table.upsert(`ns/o-${i}`).row, COLUMNS.generation, i);
    for (let i = 0; i < 10_000; i++) assert.equal(table.get(table.row(`ns/o-${i}`) as number, COLUMNS.generation), i);
    const freed = table.row('ns/o-5');
    assert.equal(table.delete('ns/o-5'), true);
    const again = table.upsert('ns/new');
    assert.equal(again.row, freed);
    assert.equal(table.get(again.row, COLUMNS.generation), 0, 'a reused row starts zeroed');
    assert.equal(table.size, 10_000);
  });

  it('keeps every column of a row apart, the requested-at hash only where it is set, and zeroes a reused row', () => {
    const table = new ObjectTable({ extraColumns: 2 });
    const a = table.upsert('ns/a').row;
    const values = Array.from({ length: table.width }, (_, column) => (column === COLUMNS.flags ? 7 : 1e15 + column));
    for (const [column, value] of values.entries()) table.set(a, column, value);
    assert.deepEqual(
      values.map((_, column) => table.get(a, column)),
      values,
    );
    table.delete('ns/a');
    const b = table.upsert('ns/b').row;
    assert.equal(b, a);
    assert.deepEqual(
      values.map((_, column) => table.get(b, column)),
      values.map(() => 0),
    );
  });

  it('keeps numeric and opaque resourceVersions', () => {
    const table = new ObjectTable();
    const a = table.upsert('a').row;
    const b = table.upsert('b').row;
    table.setResourceVersion(a, '123456789');
    table.setResourceVersion(b, 'opaque-rv');
    assert.equal(table.resourceVersion(a), '123456789');
    assert.equal(table.resourceVersion(b), 'opaque-rv');
  });

  it('finds the keys a relist did not see', () => {
    const table = new ObjectTable();
    for (const key of ['a', 'b', 'c']) table.upsert(key);
    table.clearSeen();
    table.set(table.row('a') as number, COLUMNS.flags, 4);
    assert.deepEqual(table.unseenKeys().sort(), ['b', 'c']);
  });
});
