// Every piece of BullMQ's Redis layout that Conveyor reads or writes behind BullMQ's API, written against bullmq 6.7.0 exactly.
//
// BullMQ's public API cannot count a queue's depth in one round trip, raise the priority of a job
// that holds a key's place, or pull a delayed job forward when a request came in while it ran, so
// Conveyor's scripts (`queue-scripts.ts`) do that on BullMQ's keys directly. Those keys, job hash
// fields and score formulas are not part of BullMQ's contract and may change in any release, which
// is why shared/package.json pins `bullmq` to exactly {@link BULLMQ_VERSION} and why nothing outside
// this file may spell them. Before moving the pin, read BullMQ's `src/commands/` for every name below
// and run `bullmq-internals.test.ts` (the layout test): it adds real jobs with the installed BullMQ
// and fails naming each name or formula that no longer holds.
//
// One more place leans on BullMQ beyond its API: `filling-worker.ts` overrides the Worker's protected `moveToActive`
// and relies on how its main loop asks for jobs (see that file); `filling-worker.test.ts` holds its promises
// against the installed BullMQ, so run it too before moving the pin.
//
// Sources in bullmq 6.7.0: `classes/queue-keys.js` (key names), `commands/includes/storeJob.lua`
// (job hash), `getDelayedScore.lua`, `getNextDelayedTimestamp.lua`, `addDelayMarkerIfNeeded.lua`
// (delayed scores, marker), `getPriorityScore.lua` (prioritized scores), `storeDeduplicatedNextJob.lua`
// and `requeueDeduplicatedJob.lua` (`de:` and `dn:`), `prepareJobForProcessing.lua` (lock),
// `promoteDelayedJobs.lua` and `addBaseMarkerIfNeeded.lua` (promotion to prioritized, the ready marker).
import type { QueueLocation } from './redis-keys.ts';

/** The bullmq release this file describes; shared/package.json pins exactly this version. */
export const BULLMQ_VERSION = '6.7.0';

/** Key types BullMQ keeps under `<prefix>:<name>:`, by what they hold. */
export const BULLMQ_KEY = {
  /** List of job ids ready to run without a priority. */
  wait: 'wait',
  /**
   * List of job ids of a queue paused by an older BullMQ. 6.7.0 pauses with a `paused` field in `meta`
   * and leaves jobs in `wait`, but still drains this list on resume, so depth counts it as waiting.
   */
  paused: 'paused',
  /** Sorted set of job ids ready to run, scored by {@link prioritizedScore}. */
  prioritized: 'prioritized',
  /** Sorted set of job ids waiting for their time, scored by {@link delayedScore}. */
  delayed: 'delayed',
  /** List of job ids being run. */
  active: 'active',
  /** Sorted set of the ids of failed jobs, scored by when they failed: Conveyor's parked requests. */
  failed: 'failed',
  /** Counter that orders jobs of one priority (INCR per prioritized add). */
  priorityCounter: 'pc',
  /** Sorted set that wakes blocked workers; see {@link DELAYED_MARKER_MEMBER}. */
  marker: 'marker',
  meta: 'meta',
  id: 'id',
  events: 'events',
  stalledCheck: 'stalled-check',
  limiter: 'limiter',
} as const;

/**
 * The key types a queue keeps for its whole life once used, whatever its jobs do; any other key of
 * a drained queue is a job, a dedup key or a non-empty set left behind.
 */
export const BULLMQ_LIFELONG_KEY_TYPES: readonly string[] = [
  BULLMQ_KEY.meta,
  BULLMQ_KEY.id,
  BULLMQ_KEY.events,
  BULLMQ_KEY.marker,
  BULLMQ_KEY.priorityCounter,
  BULLMQ_KEY.stalledCheck,
  BULLMQ_KEY.limiter,
];

/** A key of the queue: `<prefix>:<name>:<type>`, as BullMQ's `QueueKeys.toKey`; `type` may also be a job id. */
export function bullmqKey(location: QueueLocation, type: string): string {
  return `${location.prefix}:${location.name}:${type}`;
}

/** What a job key is: the job id appended to this (the `prefix` Lua scripts get from BullMQ). */
export function jobKeyPrefix(location: QueueLocation): string {
  return bullmqKey(location, '');
}

/** The hash that holds one job (fields: {@link JOB_FIELD}). */
export function jobKey(location: QueueLocation, jobId: string): string {
  return bullmqKey(location, jobId);
}

/** The lock a worker holds on a running job (string: its token, with a PX expiry of `lockDuration`). */
export function jobLockKey(location: QueueLocation, jobId: string): string {
  return `${jobKey(location, jobId)}:lock`;
}

/** What a deduplication id is appended to, after the job key prefix, for its {@link deduplicationKey}. */
export const DEDUPLICATION_KEY_TYPE = 'de:';

/** What a deduplication id is appended to, after the job key prefix, for its {@link deduplicationNextKey}. */
export const DEDUPLICATION_NEXT_KEY_TYPE = 'dn:';

/** String: the id of the job that holds a deduplication id's place (waiting, delayed or active). */
export function deduplicationKey(location: QueueLocation, deduplicationId: string): string {
  return bullmqKey(location, `${DEDUPLICATION_KEY_TYPE}${deduplicationId}`);
}

/**
 * Hash (fields: {@link NEXT_JOB_FIELD}): the request kept, with `keepLastIfActive`, for a
 * deduplication id whose job is active; BullMQ turns it into a job when that job finishes.
 */
export function deduplicationNextKey(location: QueueLocation, deduplicationId: string): string {
  return bullmqKey(location, `${DEDUPLICATION_NEXT_KEY_TYPE}${deduplicationId}`);
}

/** Fields of a job hash that Conveyor reads or writes. */
export const JOB_FIELD = {
  /** The job name (Conveyor: the request reason). */
  name: 'name',
  /** The payload, JSON. */
  data: 'data',
  /** The job's options, JSON with BullMQ's abbreviations (`de` for deduplication; `priority` as is). */
  opts: 'opts',
  /** The priority, 0 for none; mirrors `opts.priority` and is what BullMQ reads when it re-queues the job. */
  priority: 'priority',
  /** The delay (ms) of the job's latest move to delayed; 0 once due. */
  delay: 'delay',
  /** When the job was added (ms since the epoch). */
  timestamp: 'timestamp',
  /** The job's deduplication id, when it has one. */
  deduplicationId: 'deid',
  /** Why the job failed last, as the processor threw it (Conveyor: `CODE: message`). */
  failedReason: 'failedReason',
  /**
   * How many times the job was moved to active (`prepareJobForProcessing.lua` adds one; BullMQ's
   * `Job.attemptsStarted`), including fetches handed back unstarted, which Conveyor takes back.
   */
  attemptsStarted: 'ats',
  /**
   * Conveyor's own field: when the job first failed since it last succeeded (ms since the epoch), for
   * `conveyor parked list`. BullMQ ignores fields it does not know and deletes them with the job.
   */
  firstFailedAt: 'conveyor-first-failed-at',
} as const;

/** Fields of a `dn:<id>` hash that Conveyor reads (name, data and opts as in {@link JOB_FIELD}). */
export const NEXT_JOB_FIELD = { name: 'name', data: 'data', opts: 'opts' } as const;

/** The key of the priority inside a job's `opts` JSON (not abbreviated, unlike `de`). */
export const OPTS_PRIORITY = 'priority';

/**
 * A job's options as BullMQ stores them in its hash's `opts` field (`optsAsJSON` in
 * `classes/redis-queue-backend.js`): undefined options left out, `deduplication` abbreviated to `de`.
 * Conveyor's jobs use no other option BullMQ abbreviates (`failParentOnFailure`, `keepLogs` and the like).
 */
export function storedJobOptions(opts: object): string {
  const stored: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(opts)) {
    if (value !== undefined) stored[name === 'deduplication' ? 'de' : name] = value;
  }
  return JSON.stringify(stored);
}

/** The `meta` field that caps the events stream's length, and the cap BullMQ sets when it is missing (`getOrSetMaxEvents.lua`). */
export const META_MAX_EVENTS_FIELD = 'opts.maxLenEvents';
export const DEFAULT_MAX_EVENTS = 10_000;

/** Names of the events BullMQ adds to the queue's `events` stream when it adds a job. */
export const BULLMQ_EVENT = {
  added: 'added',
  delayed: 'delayed',
  deduplicated: 'deduplicated',
  duplicated: 'duplicated',
} as const;

/**
 * Delayed jobs are scored `dueAt × 0x1000 + n`: the due time in ms with 12 bits below it that keep up
 * to 4096 jobs due in one millisecond in the order they were delayed.
 */
export const DELAYED_SCORE_FACTOR = 0x1000;

/** Score of the `n`-th job delayed until `dueAt` (ms); `n` is 0 for the first. */
export function delayedScore(dueAt: number, n = 0): number {
  return dueAt * DELAYED_SCORE_FACTOR + n;
}

/** The score BullMQ gives the {@link DELAYED_MARKER_MEMBER} for the lowest delayed score (not rounded, as BullMQ). */
export function delayedMarkerScore(lowestDelayedScore: number): number {
  return lowestDelayedScore / DELAYED_SCORE_FACTOR;
}

/**
 * Prioritized jobs are scored `priority × 2^32 + counter mod 2^32`, counter being the queue's `pc`
 * after an INCR: lower priorities first, and first come first served within one priority.
 */
export const PRIORITY_SCORE_FACTOR = 0x100000000;

export function prioritizedScore(priority: number, counter: number): number {
  return priority * PRIORITY_SCORE_FACTOR + (counter % PRIORITY_SCORE_FACTOR);
}

/**
 * The `marker` member that tells blocked workers when the next delayed job is due: its score is that
 * due time in ms ({@link delayedMarkerScore}). Member `'0'` with score 0 means "a job is ready".
 */
export const DELAYED_MARKER_MEMBER = '1';

/**
 * The `marker` member, scored 0, that tells blocked workers a job is ready now (BullMQ's
 * `addBaseMarkerIfNeeded`): admission of resync jobs (queue-scripts.ts) sets it as BullMQ's promotion does.
 */
export const READY_MARKER_MEMBER = '0';
