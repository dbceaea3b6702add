// Redis connections for the queue (single server or Cluster), and a scan of job ids; key names are in redis-keys.ts.
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
