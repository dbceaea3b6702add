// Assigns each object to one of N watcher shards by FNV-1a of `namespace/name`, and reads a shard from flags or a StatefulSet ordinal.
import { InvalidArgumentError } from '@conveyor/shared';
import { fnv1a32 } from '@conveyor/shared/fnv';

export interface Shard {
  /** 0-based index of this replica's shard. */
  index: number;
  count: number;
}

/** The shard that owns `namespace/name` among `count` shards. */
export function shardOf(namespace: string, name: string, count: number): number {
  return fnv1a32(`${namespace}/${name}`) % count;
}

export function inShard(shard: Shard | undefined, namespace: string, name: string): boolean {
  return shard === undefined || shard.count === 1 || shardOf(namespace, name, shard.count) === shard.index;
}

/**
 * Reads `i/n`, or `ordinal/n` where the index is the StatefulSet ordinal at the end of the pod's
 * host name (`conveyor-watcher-2` → 2).
 */
export function parseShard(text: string, hostname?: string): Shard {
  const match = /^(\d+|ordinal)\/(\d+)$/.exec(text.trim());
  if (match === null) throw new InvalidArgumentError(`shard "${text}" must be index/count (such as 0/3) or ordinal/count`);
  const count = Number(match[2]);
  if (count < 1) throw new InvalidArgumentError(`shard "${text}": count must be at least 1`);
  let index: number;
  if (match[1] === 'ordinal') {
    const ordinal = /-(\d+)$/.exec(hostname ?? '');
    if (ordinal === null) {
      throw new InvalidArgumentError(`shard "${text}": host name "${hostname ?? ''}" does not end in a StatefulSet ordinal (-N)`);
    }
    index = Number(ordinal[1]);
  } else {
    index = Number(match[1]);
  }
  if (index >= count) throw new InvalidArgumentError(`shard "${text}": index ${index} must be below count ${count}`);
  return { index, count };
}

export function formatShard(shard: Shard | undefined): string {
  return shard === undefined ? 'all' : `${shard.index}/${shard.count}`;
}
