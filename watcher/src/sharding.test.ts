import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '@conveyor/shared';
import { inShard, parseShard, shardOf } from './sharding.ts';

const names = Array.from({ length: 3000 }, (_, i) => ({ namespace: `ns-${i % 7}`, name: `w-${i}` }));

describe('Sharding', () => {
  it('puts every key in exactly one of N shards, spread roughly evenly', () => {
    for (const count of [1, 2, 3, 5]) {
      const sizes = new Array<number>(count).fill(0);
      for (const { namespace, name } of names) {
        const owners = Array.from({ length: count }, (_, index) => index).filter((index) => inShard({ index, count }, namespace, name));
        assert.equal(owners.length, 1);
        sizes[owners[0] as number] = (sizes[owners[0] as number] as number) + 1;
      }
      for (const size of sizes) assert.ok(size > (names.length / count) * 0.8, `shard sizes ${sizes.join(',')} are uneven`);
    }
  });

  it('hashes namespace/name with FNV-1a 32 (as a BigInt reference over UTF-8 bytes computes it)', () => {
    const reference = (text: string) => {
      let h = 0x811c9dc5n;
      for (const byte of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(byte)) * 0x01000193n) & 0xffffffffn;
      return Number(h);
    };
    for (const { namespace, name } of names.slice(0, 50)) {
      assert.equal(shardOf(namespace, name, 7), reference(`${namespace}/${name}`) % 7);
    }
  });

  it('reads index/count and the StatefulSet ordinal, and names what is wrong', () => {
    assert.deepEqual(parseShard('1/3'), { index: 1, count: 3 });
    assert.deepEqual(parseShard('ordinal/4', 'conveyor-watcher-2'), { index: 2, count: 4 });
    assert.throws(
      () => parseShard('3/3'),
      (e: unknown) => e instanceof InvalidArgumentError && /below count 3/.test(e.message),
    );
    assert.throws(() => parseShard('ordinal/2', 'watcher'), /does not end in a StatefulSet ordinal/);
    assert.throws(() => parseShard('a/b'), /index\/count/);
  });
});
