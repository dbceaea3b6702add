// Reconcile counts and durations per 10-second bucket in Redis, written by every worker and read by the autoscaler and `conveyor status`.
//
// The autoscaler runs in the watcher while reconciles run in other processes (or in Lambda, through the
// dispatcher), so the measured reconcile duration has to travel through Redis. Buckets expire on their own.
import type { Config } from './config.ts';
import type { RedisConnection } from './queue/redis-connection.ts';
import { controllerKeys } from './queue/redis-keys.ts';

const BUCKET_MS = 10_000;
const KEEP_MS = 5 * 60_000;

function bucketKey(redis: Config['redis'], controller: string, bucket: number): string {
  return controllerKeys(redis.prefix, controller).statsBucket(bucket);
}

export interface ReconcileStats {
  /** Reconciles finished within the window. */
  count: number;
  /** Of those, how many ended in an error or terminal outcome. */
  errors: number;
  /** Mean duration, or undefined when none finished. */
  meanMs: number | undefined;
  /** Finished reconciles per second over the window. */
  perSecond: number;
}

/** Records one finished reconcile (one pipelined round trip). */
export async function recordReconcile(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
  durationMs: number,
  failed: boolean,
  now = Date.now(),
): Promise<void> {
  const key = bucketKey(redis, controller, Math.floor(now / BUCKET_MS));
  const pipeline = connection.multi();
  pipeline.hincrby(key, 'count', 1);
  pipeline.hincrby(key, 'ms', Math.max(0, Math.round(durationMs)));
  if (failed) pipeline.hincrby(key, 'errors', 1);
  pipeline.pexpire(key, KEEP_MS);
  await pipeline.exec();
}

/** Sums the buckets of the last `windowMs` (at most five minutes). */
export async function readReconcileStats(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
  windowMs = 60_000,
  now = Date.now(),
): Promise<ReconcileStats> {
  const span = Math.min(Math.max(windowMs, BUCKET_MS), KEEP_MS);
  const last = Math.floor(now / BUCKET_MS);
  const first = Math.floor((now - span) / BUCKET_MS) + 1;
  const pipeline = connection.multi();
  for (let bucket = first; bucket <= last; bucket += 1) pipeline.hmget(bucketKey(redis, controller, bucket), 'count', 'ms', 'errors');
  const replies = (await pipeline.exec()) ?? [];
  let count = 0;
  let ms = 0;
  let errors = 0;
  for (const [error, value] of replies) {
    if (error !== null) throw error;
    const [c, m, e] = value as (string | null)[];
    count += Number(c ?? 0);
    ms += Number(m ?? 0);
    errors += Number(e ?? 0);
  }
  return { count, errors, meanMs: count === 0 ? undefined : ms / count, perSecond: (count * 1_000) / span };
}
