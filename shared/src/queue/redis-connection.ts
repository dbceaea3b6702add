// Redis connections for the queue (single server or Cluster) and the names of every Redis key a controller's queue uses.
import { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.ts';

export type RedisConnection = Redis | Cluster;

/**
 * An ioredis client for the configured Redis: a Cluster client when `clusterNodes` is set,
 * otherwise a single-server client for `url`. `maxRetriesPerRequest: null` is what BullMQ needs
 * for its blocking connections: a command waits for a reconnect instead of failing.
 */
export function createRedisConnection(redis: Config['redis']): RedisConnection {
  if (redis.clusterNodes !== undefined && redis.clusterNodes.length > 0) {
    const nodes = redis.clusterNodes.map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    });
    return new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null }, enableReadyCheck: true });
  }
  return new Redis(redis.url, { maxRetriesPerRequest: null });
}

/**
 * Where one controller's queue lives in Redis. BullMQ builds its keys as `<prefix>:<name>:<type>`;
 * the prefix is a hash tag (`{conveyor:widgets}`) so every key of one queue hashes to one Redis
 * Cluster slot, which BullMQ's multi-key Lua scripts require.
 */
export interface QueueLocation {
  /** BullMQ `prefix` option, such as `{conveyor:widgets}`. */
  prefix: string;
  /** BullMQ queue name: the controller name. */
  name: string;
}

export function queueLocation(redisPrefix: string, controller: string): QueueLocation {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(controller)) {
    throw new RangeError(`controller name "${controller}" must be lowercase letters, digits and dashes`);
  }
  return { prefix: `{${redisPrefix}:${controller}}`, name: controller };
}

/** The full name of a key of this queue; `type` is a BullMQ key type (`wait`, `de:<id>`, …) or one of ours. */
export function queueKey(location: QueueLocation, type: string): string {
  return `${location.prefix}:${location.name}:${type}`;
}

/** The members of a sorted set of job ids (such as `failed`) that start with `idPrefix`, by ZSCAN. */
export async function scanJobIds(connection: RedisConnection, setKey: string, idPrefix: string): Promise<string[]> {
  const pattern = `${idPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const ids: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await connection.zscan(setKey, cursor, 'MATCH', pattern, 'COUNT', '1000');
    cursor = next;
    for (let i = 0; i < page.length; i += 2) {
      const id = page[i];
      if (id !== undefined) ids.push(id);
    }
  } while (cursor !== '0');
  return ids;
}
