// The "external system" of the example Widget controller: a Redis hash of records that finalize must remove before a Widget may go. Example code, like a user's: it names its own key.
import type { Cluster, Redis } from 'ioredis';

/** The hash holding the example's records, beside (not inside) Conveyor's own keys. */
export function exampleRecordsKey(prefix: string): string {
  return `${prefix}:example:widget-records`;
}

/**
 * Stands in for a cloud resource, a DNS entry or a database row that a controller creates and must
 * clean up: it lives outside Kubernetes, so only a finalizer guarantees its removal.
 */
export class ExampleRecords {
  private readonly redis: Redis | Cluster;
  private readonly key: string;

  constructor(redis: Redis | Cluster, prefix: string) {
    this.redis = redis;
    this.key = exampleRecordsKey(prefix);
  }

  /** Creates or replaces the record of an object (idempotent). */
  async put(id: string, value: string): Promise<void> {
    await this.redis.hset(this.key, id, value);
  }

  async get(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.key, id)) ?? undefined;
  }

  /** Removes the record; resolves false when there was none (idempotent). */
  async remove(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, id)) > 0;
  }

  async count(): Promise<number> {
    return await this.redis.hlen(this.key);
  }
}
