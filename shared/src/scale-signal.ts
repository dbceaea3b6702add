// The autoscaler's desired worker count for a controller, kept in Redis so the dispatcher (another process) can follow it.
import type { Config } from './config.ts';
import type { RedisConnection } from './queue/redis-connection.ts';
import { controllerKeys } from './queue/redis-keys.ts';

/** Lives beside the queue's keys, in its hash slot; expires so a dead autoscaler stops steering. */
function desiredKey(redis: Config['redis'], controller: string): string {
  return controllerKeys(redis.prefix, controller).desiredWorkers;
}

export async function publishDesiredWorkers(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
  workers: number,
  ttlMs: number,
): Promise<void> {
  await connection.set(desiredKey(redis, controller), String(workers), 'PX', Math.max(1_000, Math.round(ttlMs)));
}

/** The last published count, or undefined when no autoscaler published one recently. */
export async function readDesiredWorkers(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
): Promise<number | undefined> {
  const value = await connection.get(desiredKey(redis, controller));
  if (value === null) return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
