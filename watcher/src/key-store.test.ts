import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyStore } from './key-store.ts';

/** Checks the store holds exactly what `model` holds, by lookup, by row and by iteration. */
function assertSame(store: KeyStore, model: Map<string, number>): void {
  assert.equal(store.size, model.size);
  for (const [key, row] of model) {
    assert.equal(store.find(key), row, `find ${key}`);
    assert.equal(store.keyAt(row), key, `keyAt ${row}`);
  }
  assert.deepEqual(
    [...store.rows()].sort((a, b) => a - b),
    [...model.values()].sort((a, b) => a - b),
  );
}

describe('KeyStore', () => {
  it('finds every key it was given by its row, and its row by the key, across namespaces and growth', () => {
    const store = new KeyStore();
    const model = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const key = `ns-${i % 7}/widget-${i}`;
      model.set(key, store.add(key));
    }
    assertSame(store, model);
    assert.equal(store.find('ns-0/widget-1'), undefined, 'widget-1 lives in ns-1');
    assert.equal(store.find('elsewhere/widget-1'), undefined);
  });

  it('keeps keys without a namespace, long names and names beyond Latin-1 beside the packed ones', () => {
    const store = new KeyStore();
    const keys = ['/cluster-scoped', 'plain', `ns/${'x'.repeat(300)}`, 'ns/näme', 'ns/名前', '', 'ns/', 'a/b/c'];
    const model = new Map(keys.map((key) => [key, store.add(key)]));
    assertSame(store, model);
    for (const key of keys) {
      store.remove(model.get(key) as number);
      model.delete(key);
      assertSame(store, model);
    }
  });

  it('reuses the rows of removed keys and compacts the bytes they held, finding every key that remains', () => {
    const store = new KeyStore();
    const model = new Map<string, number>();
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10_000; i++) {
        const key = `default/r${round}-object-with-a-longer-name-${i}`;
        model.set(key, store.add(key));
      }
      for (const [key, row] of [...model].filter((_, i) => i % 10 !== 0)) {
        store.remove(row);
        model.delete(key);
      }
      assertSame(store, model);
    }
    assert.ok(store.rowLimit < 15_000, `rows are reused: ${store.rowLimit} rows for ${model.size} keys after 50,000 adds`);
  });

  it('behaves as a Map of keys to distinct rows under any sequence of adds and removes', () => {
    const key = fc
      .tuple(fc.constantFrom('', 'default', 'kube-system', 'ns'), fc.stringMatching(/^[a-z0-9.-]{1,12}$/))
      .map(([ns, name]) => (ns === '' ? name : `${ns}/${name}`));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), key), { maxLength: 400 }), (ops) => {
        const store = new KeyStore();
        const model = new Map<string, number>();
        for (const [add, k] of ops) {
          const row = model.get(k);
          if (add && row === undefined) {
            const added = store.add(k);
            assert.ok(![...model.values()].includes(added), 'a new row is not in use');
            model.set(k, added);
          } else if (!add && row !== undefined) {
            store.remove(row);
            model.delete(k);
          }
          assert.equal(store.find(k), model.get(k));
        }
        assertSame(store, model);
      }),
    );
  });
});
