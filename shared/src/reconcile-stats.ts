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
  const sums = new Map<number, BucketSums>();
  addTo(sums, Math.floor(now / BUCKET_MS), durationMs, failed);
  await writeSums(connection, redis, controller, sums);
}

/** Finished reconciles of one bucket not yet written. */
interface BucketSums {
  count: number;
  ms: number;
  errors: number;
}

function addTo(sums: Map<number, BucketSums>, bucket: number, durationMs: number, failed: boolean): void {
  const entry = sums.get(bucket) ?? { count: 0, ms: 0, errors: 0 };
  entry.count += 1;
  entry.ms += Math.max(0, Math.round(durationMs));
  if (failed) entry.errors += 1;
  sums.set(bucket, entry);
}

async function writeSums(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
  sums: Map<number, BucketSums>,
): Promise<void> {
  const pipeline = connection.multi();
  for (const [bucket, { count, ms, errors }] of sums) {
    const key = bucketKey(redis, controller, bucket);
    pipeline.hincrby(key, 'count', count);
    pipeline.hincrby(key, 'ms', ms);
    if (errors > 0) pipeline.hincrby(key, 'errors', errors);
    pipeline.pexpire(key, KEEP_MS);
  }
  await pipeline.exec();
}

/**
 * How long a worker sums finished reconciles in memory before it writes them. A write per reconcile was a
 * MULTI of four commands on the reconcile's own path (B3 through the dispatcher: a tenth of its CPU); the
 * readers look at a minute, so a second's delay changes nothing they decide.
 */
export const RECORD_FLUSH_MS = 1_000;

export interface ReconcileRecorder {
  /** Counts one finished reconcile; written within {@link RECORD_FLUSH_MS}. */
  record(durationMs: number, failed: boolean): void;
  /** Writes what is counted now (a stopping worker calls it before it closes Redis). Never rejects. */
  flush(): Promise<void>;
}

/** Sums finished reconciles per bucket and writes them in one pipelined round trip at most every `flushMs`. */
export function reconcileRecorder(
  connection: RedisConnection,
  redis: Config['redis'],
  controller: string,
  options: { onError: (error: unknown) => void; flushMs?: number; now?: () => number },
): ReconcileRecorder {
  const now = options.now ?? Date.now;
  let pending = new Map<number, BucketSums>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = async (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.size === 0) return;
    const sums = pending;
    pending = new Map();
    // A lost write only makes the autoscaler's estimate a little older, as a lost sample always did.
    await writeSums(connection, redis, controller, sums).catch(options.onError);
  };
  return {
    record(durationMs, failed) {
      addTo(pending, Math.floor(now() / BUCKET_MS), durationMs, failed);
      if (timer !== undefined) return;
      timer = setTimeout(() => void flush(), options.flushMs ?? RECORD_FLUSH_MS);
      timer.unref();
    },
    flush,
  };
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
