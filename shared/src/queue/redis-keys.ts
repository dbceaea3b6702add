// The name of every Redis key Conveyor writes, built in this one place with one separator (`:`).
//
// Why here and not beside each use: a key's name is a contract between processes of different
// versions (watcher, workers, dispatcher, `conveyor status`), so renaming one is a change to that
// contract; and Redis Cluster only runs a multi-key script when all its keys share a slot, which
// holds only as long as every key of a controller is built around the same hash tag.
//
// # Layout
// `:` separates the segments of a name; `-` only joins the words of one segment (`watch-cursor`, as
// BullMQ's `stalled-check`). Every key of one controller starts with its hash tag
// `{<redis.prefix>:<controller>}`, so Redis Cluster keeps them on one slot; the API budget is per
// installation and has none. A queue split into N > 1 partitions (`queue.partitions`) keeps each
// partition's keys (BullMQ's, the epoch, the parked-keys note) under the partition's own tag
// `{<redis.prefix>:<controller>:p<i>}` instead, written `<partition tag>` below; with one partition the
// partition tag is the controller's, so the layout of an unpartitioned queue is the one it always had.
// A key's partition is `partitionIndex` of its encoded key.
//
// | key | type | written by | read by | lifetime |
// |---|---|---|---|---|
// | `<partition tag>:<controller>:<type>` | BullMQ's (see `bullmq-internals.ts`) | BullMQ, and Conveyor's scripts in `queue-scripts.ts` | BullMQ, `ReconcileQueue` (depth, parked) | BullMQ's: jobs until completed (then removed) or parked; bookkeeping forever |
// | `<partition tag>:epoch` | string, random | `ReconcileQueue.checkEpoch` (watcher), only when missing | `checkEpoch` | forever; vanishes only when Redis loses its data, which is what it detects |
// | `{<prefix>:<controller>}:partitions` | string, integer: the partition count the queue in Redis has; missing means 1 | `ReconcileQueue.checkLayout` (watcher, workers, dispatcher at start), when missing or when the recorded layout holds no request | `checkLayout`, `checkEpoch` | forever |
// | `{<prefix>:<controller>}:watch-cursor` | hash: `<stream>\|<shard>` → resourceVersion | `WatchCursorStore` (watcher, every second) | the watcher at start | forever, overwritten in place |
// | `<partition tag>:parked-keys` | set of encoded object keys | queue worker when it parks a request | queue worker, which removes a key once a later reconcile of it succeeds (done or requeue-after); `discardParked` | while the key has a parked request (a hint: see `apply-outcome.ts`) |
// | `{<prefix>:<controller>}:stats:<bucket>` | hash: `count`, `ms`, `errors`; bucket = ms since the epoch / 10 000 | every worker and dispatcher, per reconcile | autoscaler, `conveyor status` | 5 minutes (PEXPIRE) |
// | `{<prefix>:<controller>}:desired-workers` | string, integer | autoscaler (watcher) | Lambda dispatcher, `conveyor status` | autoscaler interval × 4 (PX), so a dead autoscaler stops steering |
// | `{<prefix>:<controller>}:own-writes:<object id>` | hash: `p` writes in flight, `n` count, `r0`..`r7` the last resourceVersions the controller's writes produced; object id = 16 hex of SHA-1 over `group/plural/namespace/name` (`own-writes.ts`) | every worker and Lambda reconcile, around each write to the API server | the watcher, for each watch event that would enqueue | 60 s after the last write (PEXPIRE) |
// | `{<prefix>:<controller>}:event-series:<series id>` | hash: `n` occurrences, `name` of the Event; series id = 16 hex of SHA-1 over the object's uid, type, reason, action and note (`event-series.ts`) | every worker and Lambda reconcile that records an Event | the same | 6 minutes after the last occurrence (PEXPIRE): then a new Event starts, as client-go's recorder finishes a series |
// | `{<prefix>:<controller>}:event-spam:<object id>` | hash: `t` tokens, `ts` last refill; object id = 16 hex of SHA-1 over the object's uid | the same | the same | until the bucket would be full again (PEXPIRE) |
// | `{<prefix>:<controller>}:blocked` | string, JSON `{ code, message, since, until }` | queue worker when a request ends `blocked` (a failure no retry can fix) | `conveyor status`, the queue worker (cleared after a success) | two pauses and a second (`queue.blockedPause`, PX), renewed by each blocked request |
// | `<prefix>:api-budget` | hash: `tokens`, `ts`, `pausedUntil` | every Kubernetes client of a worker (`take-api-token.ts`) | the same | until the bucket would be full again (PEXPIRE) |
//
// Conveyor also writes one field into BullMQ's job hashes, `conveyor-first-failed-at` (bullmq-internals.ts `JOB_FIELD`):
// the queue worker sets it at a job's first failed attempt and clears it when the job next succeeds; it goes with the job.
//
// # Why Conveyor's keys cannot meet BullMQ's
// BullMQ names its keys `<hash tag>:<controller>:<type or job id>`, Conveyor `<hash tag>:<kind>[:<n>]`.
// They could only be equal for a controller named like a kind whose BullMQ key type or job id equals
// the rest of ours; the kinds with a rest are `stats`, whose rest is an integer, and `own-writes`,
// `event-series` and `event-spam`, whose rest is 16 hex digits, and Conveyor never lets BullMQ number a job: every add passes a
// `jobId`, which contains `~` (`reconcile-queue.ts`).

import { fnv1a32 } from '../fnv.ts';

/**
 * Where one controller's queue lives in Redis: the `prefix` and queue `name` options given to BullMQ,
 * which builds its keys as `<prefix>:<name>:<type>`. The prefix is the controller's hash tag
 * (`{conveyor:widgets}`), which BullMQ's multi-key Lua scripts need on a Redis Cluster.
 */
export interface QueueLocation {
  /** BullMQ `prefix` option and the controller's hash tag, such as `{conveyor:widgets}`. */
  prefix: string;
  /** BullMQ queue name: the controller name. */
  name: string;
}

/** The segment separator of every key name. */
export const KEY_SEPARATOR = ':';

function join(...segments: string[]): string {
  return segments.join(KEY_SEPARATOR);
}

export function queueLocation(redisPrefix: string, controller: string): QueueLocation {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(controller)) {
    throw new RangeError(`controller name "${controller}" must be lowercase letters, digits and dashes`);
  }
  return { prefix: `{${join(redisPrefix, controller)}}`, name: controller };
}

/** The keys of one partition of a controller's queue, all in the partition's hash slot. */
export interface PartitionKeys {
  /** 0-based. */
  readonly index: number;
  /** Where BullMQ keeps this partition's queue. */
  readonly queue: QueueLocation;
  /** String: vanishes when Redis loses the partition, so the watcher knows to relist. */
  readonly epoch: string;
  /** Set: encoded object keys that have a parked request in this partition. */
  readonly parkedKeys: string;
}

/** The keys Conveyor itself keeps for one controller (see the table above). */
export interface ControllerKeys {
  /** The queue's partitions (`queue.partitions`; one unless configured), each with its own hash tag. */
  readonly partitions: readonly PartitionKeys[];
  /** String, integer: how many partitions the queue in Redis is split into; missing means one. */
  readonly layout: string;
  /** Hash: last fully enqueued resourceVersion per watch stream. */
  readonly watchCursor: string;
  /** String: the autoscaler's worker count for the dispatcher. */
  readonly desiredWorkers: string;
  /** String (JSON): why the whole queue is paused, while it is (a failure no retry can fix). */
  readonly blocked: string;
  /** Hash: reconcile count, total ms and errors of one 10-second bucket. */
  statsBucket(bucket: number): string;
  /** Hash: the resourceVersions the controller's own writes to one object produced (`id` from `ownWriteId`). */
  ownWrites(id: string): string;
  /** Hash: occurrences and name of one Event series (`id` from `eventSeriesId`). */
  eventSeries(id: string): string;
  /** Hash: the Event spam filter's token bucket of one object (`id` from `eventObjectId`). */
  eventSpam(id: string): string;
  /** The partition of an encoded object key (`keyToJobId`), or of a job id made for one (`<encoded key>~<n>`). */
  partitionOf(encodedKeyOrJobId: string): PartitionKeys;
}

function hexId(kind: string, id: string): string {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new RangeError(`${kind} id must be 16 hex digits, got ${id}`);
  return id;
}

/** The encoded-key part of a job id (`<key>~<n>`, reconcile-queue.ts): what every job of one key shares, and what places it in a partition. */
export function jobIdKeyPart(jobId: string): string {
  const at = jobId.lastIndexOf('~');
  return at === -1 ? jobId : jobId.slice(0, at);
}

/** Most partitions one controller's queue may have. */
export const MAX_PARTITIONS = 256;

/**
 * The partition of an encoded object key among `count`: FNV-1a 32 of the key modulo the count. Stable
 * across processes, versions and restarts, and unrelated to the watcher's sharding (which hashes
 * `namespace/name`), so a shard's keys spread over every partition.
 */
export function partitionIndex(encodedKey: string, count: number): number {
  return count === 1 ? 0 : fnv1a32(encodedKey) % count;
}

/**
 * Every key of one controller. With one partition (the default) the queue keeps the layout it always
 * had: BullMQ's keys and the epoch and parked-keys under the controller's own tag. With N > 1, each
 * partition `i` gets its own tag `{<prefix>:<controller>:p<i>}`, so Redis Cluster can put each on
 * another node; the controller-wide keys (layout, watch cursor, stats, blocked, desired workers, own
 * writes) stay under the controller's tag.
 */
export function controllerKeys(redisPrefix: string, controller: string, partitions = 1): ControllerKeys {
  const base = queueLocation(redisPrefix, controller);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`queue partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${partitions}`);
  }
  const tag = base.prefix;
  const parts: PartitionKeys[] = Array.from({ length: partitions }, (_, index) => {
    const queue = partitions === 1 ? base : { prefix: `{${join(redisPrefix, controller, `p${index}`)}}`, name: controller };
    return { index, queue, epoch: join(queue.prefix, 'epoch'), parkedKeys: join(queue.prefix, 'parked-keys') };
  });
  return {
    partitions: parts,
    layout: join(tag, 'partitions'),
    watchCursor: join(tag, 'watch-cursor'),
    desiredWorkers: join(tag, 'desired-workers'),
    blocked: join(tag, 'blocked'),
    statsBucket: (bucket) => {
      if (!Number.isSafeInteger(bucket)) throw new RangeError(`stats bucket must be an integer, got ${bucket}`);
      return join(tag, 'stats', String(bucket));
    },
    ownWrites: (id) => join(tag, 'own-writes', hexId('own-writes', id)),
    eventSeries: (id) => join(tag, 'event-series', hexId('event-series', id)),
    eventSpam: (id) => join(tag, 'event-spam', hexId('event-spam', id)),
    partitionOf: (id) => parts[partitionIndex(jobIdKeyPart(id), partitions)] as PartitionKeys,
  };
}

/** The API budget's token bucket: one per installation (`redis.prefix`), shared by every controller's workers. */
export function apiBudgetKey(redisPrefix: string): string {
  return join(redisPrefix, 'api-budget');
}
