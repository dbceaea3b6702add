// The race test's instrumented reconcile (logs start, observed event, end to Redis) and the Redis bookkeeping around it.

import { formatKey, type ObjectKey } from '@conveyor/shared/object-key';
import { done, type Outcome, requeueAfter } from '@conveyor/shared/outcome';
import { BULLMQ_LIFELONG_KEY_TYPES, bullmqKey } from '@conveyor/shared/queue/bullmq-internals';
import type { RequestContext } from '@conveyor/shared/queue/queue-worker';
import { controllerKeys, queueLocation } from '@conveyor/shared/queue/redis-keys';
import type { Redis } from 'ioredis';
import type { LastEvent, RaceRecord } from './detector.ts';

/** Where one race run keeps its event sequence numbers and its reconcile log (outside the queue's keys). */
export interface RaceKeys {
  /** Hash: formatted object key → latest event sequence number. */
  seq: string;
  /** List of JSON {@link RaceRecord}s. */
  log: string;
}

export function raceKeys(runId: string): RaceKeys {
  return { seq: `race:${runId}:seq`, log: `race:${runId}:log` };
}

/** A small seeded PRNG (mulberry32) so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ReconcileBehaviour {
  /** Each reconcile sleeps between these many ms. */
  minMs: number;
  maxMs: number;
  /** Share of reconciles that throw a transient error (retried with backoff). */
  errorRate: number;
  /** Share that return requeueAfter(requeueMs). */
  requeueRate: number;
  requeueMs: number;
  /** Share that report throttling: the whole queue pauses for `throttleMs`. @defaultValue 0 */
  throttleRate?: number;
  throttleMs?: number;
}

/**
 * A processor that records each reconcile: `start` (with the key's event sequence number read from
 * Redis after the start time was taken), then a short sleep, then `end` with its outcome.
 */
export function recordingProcessor(options: {
  redis: Redis;
  keys: RaceKeys;
  worker: number;
  random: () => number;
  behaviour: ReconcileBehaviour;
  /** Awaited in the middle of the reconcile, for tests that hold one open. */
  hold?: (request: RequestContext) => Promise<void>;
}): (request: RequestContext) => Promise<Outcome> {
  const { redis, keys, worker, random, behaviour } = options;
  let n = 0;
  return async (request) => {
    const at = Date.now();
    const key = formatKey(request.key);
    const observed = Number((await redis.hget(keys.seq, key)) ?? 0);
    const run = `${worker}:${++n}`;
    await redis.rpush(keys.log, JSON.stringify({ t: 'start', run, key, worker, at, observed } satisfies RaceRecord));
    const sleep = behaviour.minMs + Math.floor(random() * (behaviour.maxMs - behaviour.minMs + 1));
    await new Promise((resolve) => setTimeout(resolve, sleep));
    if (options.hold !== undefined) await options.hold(request);
    const roll = random();
    const requeueFrom = behaviour.errorRate;
    const throttleFrom = requeueFrom + behaviour.requeueRate;
    const outcome: Outcome | 'throw' =
      roll < requeueFrom
        ? 'throw'
        : roll < throttleFrom
          ? requeueAfter(behaviour.requeueMs)
          : roll < throttleFrom + (behaviour.throttleRate ?? 0)
            ? { kind: 'throttled', retryAfterMs: behaviour.throttleMs ?? 0, message: 'throttling injected by the race test' }
            : done;
    const kind = outcome === 'throw' ? 'error' : outcome.kind;
    await redis.rpush(keys.log, JSON.stringify({ t: 'end', run, at: Date.now(), outcome: kind } satisfies RaceRecord));
    if (outcome === 'throw') throw new Error('transient failure injected by the race test');
    return outcome;
  };
}

/**
 * Records an event for `keys` before it is enqueued: takes the time, then bumps each key's sequence
 * number in one pipeline. A reconcile that starts after the enqueue reads at least this number.
 */
export async function recordEvents(
  redis: Redis,
  raceKeys: RaceKeys,
  keys: readonly ObjectKey[],
  last: Map<string, LastEvent>,
): Promise<void> {
  const at = Date.now();
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.hincrby(raceKeys.seq, formatKey(key), 1);
  const results = (await pipeline.exec()) ?? [];
  keys.forEach((key, index) => {
    const [error, seq] = results[index] ?? [new Error('no reply'), 0];
    if (error) throw error;
    last.set(formatKey(key), { seq: Number(seq), at });
  });
}

export async function readRaceLog(redis: Redis, keys: RaceKeys): Promise<RaceRecord[]> {
  const lines = await redis.lrange(keys.log, 0, -1);
  return lines.map((line) => JSON.parse(line) as RaceRecord);
}

/**
 * Every key of a controller (its hash tags: BullMQ's and Conveyor's, of every partition) left in Redis
 * except those kept for the queue's whole life (BullMQ's bookkeeping, the epochs, the layout, the watch
 * cursor): jobs, `de:`/`dn:` dedup keys, non-empty sets such as the parked-keys note. On a cluster, ask
 * every node: each answers for the keys it holds.
 */
export async function queueLeftovers(redis: Redis, prefix: string, controller: string, partitions = 1): Promise<string[]> {
  const keys = controllerKeys(prefix, controller, partitions);
  const lifelong = new Set([
    ...keys.partitions.flatMap((partition) => [
      ...BULLMQ_LIFELONG_KEY_TYPES.map((type) => bullmqKey(partition.queue, type)),
      partition.epoch,
    ]),
    keys.layout,
    keys.watchCursor,
  ]);
  const tags = new Set([queueLocation(prefix, controller).prefix, ...keys.partitions.map((partition) => partition.queue.prefix)]);
  const found: string[] = [];
  for (const tag of tags) {
    const pattern = `${tag}:*`.replace(/[{}[\]]/g, '\\$&');
    let cursor = '0';
    do {
      const [next, page] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...page);
    } while (cursor !== '0');
  }
  return found.filter((key) => !lifelong.has(key)).sort();
}
