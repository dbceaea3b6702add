// Keeps the watcher's last enqueued resourceVersion per resource in Redis, so a restarted watcher knows what it missed.
import type { Cluster, Redis } from 'ioredis';
import { controllerKeys } from './queue/redis-keys.ts';

/**
 * One Redis hash per controller (`ControllerKeys.watchCursor`), in the controller's queue hash slot, so
 * a lost Redis loses the cursor together with the queue and the watcher starts afresh (a full sync).
 * Fields are `<resource>|<shard>`; values are resourceVersions whose events are all enqueued.
 */
export class WatchCursorStore {
  readonly key: string;
  private readonly redis: Redis | Cluster;

  constructor(redis: Redis | Cluster, options: { prefix: string; controller: string }) {
    this.redis = redis;
    this.key = controllerKeys(options.prefix, options.controller).watchCursor;
  }

  async get(stream: string): Promise<string | undefined> {
    const value = await this.redis.hget(this.key, stream);
    return value === null ? undefined : value;
  }

  /** Records that every event up to `resourceVersion` of `stream` is enqueued. */
  async set(stream: string, resourceVersion: string): Promise<void> {
    await this.redis.hset(this.key, stream, resourceVersion);
  }

  async clear(stream: string): Promise<void> {
    await this.redis.hdel(this.key, stream);
  }
}
