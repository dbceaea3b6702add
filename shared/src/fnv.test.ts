import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fnv1a32, hash53, hashStringList, hashStringMap } from './fnv.ts';

describe('FNV-1a hashes', () => {
  it('match the published FNV-1a test vectors', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
    // FNV-1a 64("a") = 0xaf63dc4c8601ec8c, of which hash53 keeps the low 53 bits.
    assert.equal(hash53('a'), (0xaf63dc4c & 0x1fffff) * 2 ** 32 + 0x8601ec8c);
    // FNV-1a 64("foobar") = 0x85944171f73967e8
    assert.equal(hash53('foobar'), (0x85944171 & 0x1fffff) * 2 ** 32 + 0xf73967e8);
  });

  it('agrees with a BigInt FNV-1a 64 on any ASCII text', () => {
    const reference = (text: string) => {
      let h = 0xcbf29ce484222325n;
      for (const byte of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
      return Number(h & 0x1fffffffffffffn);
    };
    fc.assert(fc.property(fc.string({ unit: 'binary-ascii' }), (text) => assert.equal(hash53(text), reference(text))));
  });

  it('hashes a label map the same in any key order, and differently when a value moves between key and value', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), fc.string()), (labels) => {
        const reversed = Object.fromEntries(Object.entries(labels).reverse());
        assert.equal(hashStringMap(labels), hashStringMap(reversed));
      }),
    );
    assert.notEqual(hashStringMap({ a: 'bc' }), hashStringMap({ ab: 'c' }));
    assert.notEqual(hashStringMap({ tier: 'gold' }), hashStringMap({ tier: 'silver' }));
    assert.equal(hashStringMap({}), hashStringMap(undefined));
  });

  it('ignores the skipped key, so the manual-request annotation does not count as an annotation change', () => {
    assert.equal(hashStringMap({ a: '1', skip: 'x' }, ['skip']), hashStringMap({ a: '1', skip: 'y' }, ['skip']));
  });

  it('treats finalizer order as a change', () => {
    assert.notEqual(hashStringList(['a', 'b']), hashStringList(['b', 'a']));
    assert.notEqual(hashStringList(['ab']), hashStringList(['a', 'b']));
  });
});
