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
// installation and has none.
//
// | key | type | written by | read by | lifetime |
// |---|---|---|---|---|
// | `{<prefix>:<controller>}:<controller>:<type>` | BullMQ's (see `bullmq-internals.ts`) | BullMQ, and Conveyor's scripts in `queue-scripts.ts` | BullMQ, `ReconcileQueue` (depth, parked) | BullMQ's: jobs until completed (then removed) or parked; bookkeeping forever |
// | `{<prefix>:<controller>}:epoch` | string, random | `ReconcileQueue.checkEpoch` (watcher), only when missing | `checkEpoch` | forever; vanishes only when Redis loses its data, which is what it detects |
// | `{<prefix>:<controller>}:watch-cursor` | hash: `<stream>\|<shard>` → resourceVersion | `WatchCursorStore` (watcher, every second) | the watcher at start | forever, overwritten in place |
// | `{<prefix>:<controller>}:parked-keys` | set of encoded object keys | queue worker when it parks a request | queue worker, which removes a key once a later reconcile of it succeeds (done or requeue-after); `discardParked` | while the key has a parked request (a hint: see `apply-outcome.ts`) |
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

/** The keys Conveyor itself keeps for one controller, all in its queue's hash slot (see the table above). */
export interface ControllerKeys {
  /** Where BullMQ keeps the controller's queue. */
  readonly queue: QueueLocation;
  /** String: vanishes when Redis loses the queue, so the watcher knows to relist. */
  readonly epoch: string;
  /** Hash: last fully enqueued resourceVersion per watch stream. */
  readonly watchCursor: string;
  /** Set: encoded object keys that have a parked request. */
  readonly parkedKeys: string;
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
}

function hexId(kind: string, id: string): string {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new RangeError(`${kind} id must be 16 hex digits, got ${id}`);
  return id;
}

export function controllerKeys(redisPrefix: string, controller: string): ControllerKeys {
  const queue = queueLocation(redisPrefix, controller);
  const tag = queue.prefix;
  return {
    queue,
    epoch: join(tag, 'epoch'),
    watchCursor: join(tag, 'watch-cursor'),
    parkedKeys: join(tag, 'parked-keys'),
    desiredWorkers: join(tag, 'desired-workers'),
    blocked: join(tag, 'blocked'),
    statsBucket: (bucket) => {
      if (!Number.isSafeInteger(bucket)) throw new RangeError(`stats bucket must be an integer, got ${bucket}`);
      return join(tag, 'stats', String(bucket));
    },
    ownWrites: (id) => join(tag, 'own-writes', hexId('own-writes', id)),
    eventSeries: (id) => join(tag, 'event-series', hexId('event-series', id)),
    eventSpam: (id) => join(tag, 'event-spam', hexId('event-spam', id)),
  };
}

/** The API budget's token bucket: one per installation (`redis.prefix`), shared by every controller's workers. */
export function apiBudgetKey(redisPrefix: string): string {
  return join(redisPrefix, 'api-budget');
}
