// The producer side of a controller's reconcile queue: enqueue with workqueue semantics, depth, parked requests, epoch.
import { randomBytes } from 'node:crypto';
import { type JobsOptions, Queue } from 'bullmq';
import { type Clock, settleWithin, systemClock } from '../clock.ts';
import type { Config } from '../config.ts';
import { TERMINAL_ERROR_CODES } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { ParkedReason } from '../metrics.ts';
import { jobIdToKey, keyToJobId, type ObjectKey } from '../object-key.ts';
import {
  BULLMQ_KEY,
  bullmqKey,
  deduplicationKey,
  delayedScore,
  JOB_FIELD,
  jobKey,
  jobKeyPrefix,
  prioritizedScore,
} from './bullmq-internals.ts';
import { type Lane, RESYNC_BACKLOG_BAND_MS, RESYNC_BACKLOG_DELAY_MS } from './lanes.ts';
import { type QueueBlockRecord, readQueueBlock } from './queue-block.ts';
import { type QueueScripts, queueScripts } from './queue-scripts.ts';
import { closeRedisConnection, createRedisConnection, type RedisConnection, reportRedisError, scanJobIds } from './redis-connection.ts';
import { type ControllerKeys, controllerKeys, type QueueLocation } from './redis-keys.ts';
import { decodeRequest, type EnqueueRequest, encodeRequest, REASON_PRIORITY, type RequestReason } from './request-payload.ts';

/** Everything the queue needs from configuration. */
export interface QueueSettings {
  /** Controller name; also the queue's name. Its Redis keys are hash-tagged `{<redis.prefix>:<controller>}`. */
  controller: string;
  redis: Config['redis'];
  queue: Config['queue'];
}

/** Requests by state. Autoscaling depth is `waiting + prioritized + delayedDue`. */
export interface Depth {
  waiting: number;
  /** Requests ready by priority, and the resync backlog that waits for a worker's resync lane to admit it (lanes.ts). */
  prioritized: number;
  /** Delayed requests whose time has come; a worker promotes them on its next fetch. */
  delayedDue: number;
  /** Requeue-afters and backoffs still in the future. */
  delayedLater: number;
  active: number;
  parked: number;
  /** Queued requests (not running) by lane; `resync` includes the backlog. They add up to `prioritized`. */
  lanes: Record<Lane, number>;
  /** Resync requests no worker has admitted yet (part of `lanes.resync` and `prioritized`). */
  resyncBacklog: number;
}

/** A request that exhausted its attempts or failed terminally, kept in BullMQ's failed set. */
export interface ParkedRequest {
  key: ObjectKey;
  /** The reason it was enqueued for; `unknown` when its payload could not be read (the error says why). */
  reason: RequestReason | 'unknown';
  /** The last error, `CODE: message`. */
  error: string;
  /** Why it is parked: a failure no retry can fix, or every attempt used (`conveyor_parked_requests{reason}`). */
  parked: ParkedReason;
  attempts: number;
  /** When it was parked: its last failure (ms since the epoch). */
  parkedAt: number;
  /** When it first failed since it last succeeded (ms since the epoch); `parkedAt` for a request parked on its first failure. */
  firstFailedAt: number;
  jobId: string;
}

/** The `countParked` script's rule: the code that opens a failed reason (`CODE: message`) is one no retry can fix, or not. */
function parkedReasonOf(failedReason: string): ParkedReason {
  const code = /^([A-Za-z0-9_]+):/.exec(failedReason)?.[1];
  return code !== undefined && (TERMINAL_ERROR_CODES as readonly string[]).includes(code) ? 'terminal' : 'exhausted';
}

/** Name of the backoff strategy the queue worker registers; stored in every job's options. */
export const BACKOFF_STRATEGY = 'conveyor-exponential';

/** Job options shared by every request. Completed jobs vanish; parked (failed) ones stay until retried. */
function jobOptions(settings: QueueSettings): JobsOptions {
  return {
    attempts: settings.queue.attempts,
    backoff: { type: BACKOFF_STRATEGY },
    removeOnComplete: true,
    removeOnFail: false,
  };
}

/** Job ids are unique per add (BullMQ ignores an add whose id exists, which would drop an event for a running key). */
function newJobId(key: ObjectKey): string {
  return `${keyToJobId(key)}~${randomBytes(6).toString('base64url')}`;
}

/** The encoded-key part of a job id (`<key>~<n>`): what every job of one key shares. */
export function jobIdKeyPart(jobId: string): string {
  const at = jobId.lastIndexOf('~');
  return at === -1 ? jobId : jobId.slice(0, at);
}

/** The key a job id was made for, or undefined for ids this module did not make. */
export function keyOfJobId(jobId: string): ObjectKey | undefined {
  try {
    return jobIdToKey(jobIdKeyPart(jobId));
  } catch {
    return undefined;
  }
}

/**
 * BullMQ `deduplication` options per reason.
 *
 * Events and manual requests use `{ id, keepLastIfActive, reschedule }`, which gives client-go
 * workqueue semantics: a request for a key that is waiting or delayed merges into that job (and a
 * delayed one is pulled forward to now); a request for a key that is being reconciled is kept
 * (latest wins) and becomes a new job, atomically, when the running one finishes. So at most one
 * running and one waiting job exist per key, and the last event is always followed by a reconcile
 * that starts after it.
 *
 * Resync uses plain `{ id }`: it only makes sure a request exists. It must not overwrite the kept
 * next-request of a running key (BullMQ keeps the latest add's options, so a resync would demote a
 * fresh event's priority), nor pull a requeue-after or a backoff forward; the running, delayed or
 * waiting job already guarantees a reconcile that reads the current object.
 */
function deduplication(key: ObjectKey, reason: RequestReason): NonNullable<JobsOptions['deduplication']> {
  const id = keyToJobId(key);
  return reason === 'resync' ? { id } : { id, keepLastIfActive: true, reschedule: true };
}

/** How long close() waits for BullMQ to finish with Redis before it lets go. */
const CLOSE_WAIT_MS = 2_000;

/** Longest pipeline one `enqueueBatch` sends at once. */
const BATCH_CHUNK = 1_000;

/**
 * Longest pipeline of resync requests. Redis runs one client's pipelined scripts back to back, so a
 * fresh event enqueued by another client (the watcher, while a replica or a relist sends a resync)
 * waits behind whatever is queued ahead of it: B4 measured an idle client's PING p99 rising from about
 * 3 ms to 40–50 ms while 1,000-job resync pipelines went in. A tenth of that keeps the wait short and
 * costs the resync little (it waits in the backlog anyway).
 */
const RESYNC_BATCH_CHUNK = 100;

export class ReconcileQueue {
  readonly location: QueueLocation;
  private readonly keys: ControllerKeys;
  private readonly settings: QueueSettings;
  private readonly connection: RedisConnection;
  private readonly ownsConnection: boolean;
  private readonly queue: Queue;
  private readonly scripts: QueueScripts;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly onAdded: ((count: number) => void) | undefined;
  private epoch: string | undefined;

  constructor(
    settings: QueueSettings,
    deps: {
      connection?: RedisConnection;
      logger?: Logger;
      clock?: Clock;
      /** Told how many requests became a new job (not merged into one already queued): `workqueue_adds_total`. */
      onAdded?: (count: number) => void;
    } = {},
  ) {
    this.settings = settings;
    this.keys = controllerKeys(settings.redis.prefix, settings.controller);
    this.location = this.keys.queue;
    this.ownsConnection = deps.connection === undefined;
    this.logger = (deps.logger ?? createLogger({ level: 'silent' })).child({ queue: settings.controller });
    this.connection = deps.connection ?? createRedisConnection(settings.redis, { logger: this.logger });
    this.clock = deps.clock ?? systemClock;
    this.onAdded = deps.onAdded;
    this.queue = new Queue(this.location.name, {
      connection: this.connection,
      prefix: this.location.prefix,
      defaultJobOptions: jobOptions(settings),
    });
    this.queue.on('error', (error) => reportRedisError(this.connection, error, this.logger, 'queue error'));
    this.scripts = queueScripts(this.connection);
  }

  /**
   * Asks for one reconcile of `request.key`.
   *
   * # Expected flow
   * The key becomes a job whose payload is identity only (`v: 1`, key, reason, time, trace). If the
   * key already has a waiting or delayed job, the request merges into it; if the key is being
   * reconciled, the request is kept and becomes a new job when that reconcile ends.
   *
   * # Guarantees
   * - After this resolves, a reconcile of the key that starts after this call will run (unless
   *   Redis loses its data, which {@link checkEpoch} reports), even if the key is being reconciled
   *   right now. Events and manual requests merge: N requests for a waiting key cause one reconcile.
   * - Never two jobs waiting for one key; never two running reconciles of one key while workers
   *   keep their locks (see the lock caveat in `queue-worker.ts`).
   * - A fresh event that merges into a waiting resync takes the event's priority.
   *
   * # Errors
   * - `InvalidKeyError` / `PayloadError` for a key Kubernetes would not accept or an unknown reason;
   *   nothing is written.
   * - Redis errors reject the promise; the request may or may not have been added. Retrying is safe:
   *   requests for one key merge.
   */
  async enqueue(request: EnqueueRequest): Promise<void> {
    const job = this.toJob(request);
    const added = await this.queue.add(job.name, job.data, job.opts);
    if (added.id !== job.opts.jobId) await this.afterMerge([request]);
    else this.onAdded?.(1);
  }

  /**
   * Enqueues many requests with the semantics of {@link enqueue}, pipelined (near BullMQ's `addBulk`
   * rate), for relists and resyncs. Every request is validated first: one bad key rejects the whole
   * batch and writes nothing. Requests for the same key inside one batch merge like separate calls.
   */
  async enqueueBatch(requests: readonly EnqueueRequest[]): Promise<void> {
    const jobs = requests.map((request) => this.toJob(request));
    const chunkSize = requests.every((request) => request.reason === 'resync') ? RESYNC_BATCH_CHUNK : BATCH_CHUNK;
    for (let start = 0; start < jobs.length; start += chunkSize) {
      const chunk = jobs.slice(start, start + chunkSize);
      const added = await this.queue.addBulk(chunk);
      const merged: EnqueueRequest[] = [];
      added.forEach((job, index) => {
        const request = requests[start + index];
        if (request !== undefined && job.id !== chunk[index]?.opts.jobId) merged.push(request);
      });
      await this.afterMerge(merged);
      this.onAdded?.(chunk.length - merged.length);
    }
  }

  /** Request counts by state and by lane, from one Lua script (one round trip). */
  async getDepth(): Promise<Depth> {
    const types = [BULLMQ_KEY.wait, BULLMQ_KEY.paused, BULLMQ_KEY.prioritized, BULLMQ_KEY.delayed, BULLMQ_KEY.active, BULLMQ_KEY.failed];
    const keys = types.map((type) => bullmqKey(this.location, type));
    const now = Math.floor(this.clock.now());
    const scores = [
      // Every delayed job due by now scores below the first score of the next millisecond.
      String(delayedScore(now + 1)),
      String(delayedScore(now + RESYNC_BACKLOG_BAND_MS)),
      String(prioritizedScore(REASON_PRIORITY.manual, 0)),
      String(prioritizedScore(REASON_PRIORITY.resync, 0)),
    ];
    const counts = await this.scripts.depthCounts(keys, scores);
    const [waiting = 0, prioritized = 0, delayedDue = 0, delayedLater = 0, active = 0, parked = 0] = counts;
    const [event = 0, manual = 0, resyncReady = 0, backlog = 0] = counts.slice(6);
    return {
      waiting,
      prioritized: prioritized + backlog,
      delayedDue,
      delayedLater,
      active,
      parked,
      lanes: { event: event + waiting, manual, resync: resyncReady + backlog },
      resyncBacklog: backlog,
    };
  }

  /** Why the whole queue is paused, when a failure no retry can fix paused it (queue-block.ts). */
  async getBlocked(): Promise<QueueBlockRecord | undefined> {
    return await readQueueBlock(this.connection, this.keys.blocked);
  }

  /** Worker processes (container workers, dispatchers) connected to this queue right now. */
  async getWorkerCount(): Promise<number> {
    return await this.queue.getWorkersCount();
  }

  /**
   * Parked requests, most recently parked first, one per object key: a key can have two parked jobs
   * (a request that arrived while the first ran, then failed too), and a person wants to see the
   * object once, with its latest error. `limit` counts keys.
   */
  async listParked(limit = 100): Promise<ParkedRequest[]> {
    const parked: ParkedRequest[] = [];
    const seen = new Map<string, ParkedRequest>();
    const page = Math.max(1, limit);
    for (let start = 0; parked.length < limit; start += page) {
      const jobs = await this.queue.getFailed(start, start + page - 1);
      const firstFailures = await this.firstFailures(jobs.map((job) => job?.id));
      for (const [index, job] of jobs.entries()) {
        if (job === undefined || job.id === undefined) continue;
        const request = this.readRequest(job.id, job.data);
        if (request === undefined) {
          this.logger.warn({ jobId: job.id }, 'parked job belongs to no object key; remove it by hand');
          continue;
        }
        const parkedAt = job.finishedOn ?? job.processedOn ?? job.timestamp;
        const firstFailedAt = Math.min(parkedAt, firstFailures[index] ?? parkedAt);
        const id = keyToJobId(request.key);
        const shown = seen.get(id);
        if (shown !== undefined) {
          // An older parked job of the same object: its first failure is the object's.
          shown.firstFailedAt = Math.min(shown.firstFailedAt, firstFailedAt);
          continue;
        }
        if (parked.length >= limit) continue;
        const error = job.failedReason ?? 'unknown error';
        const entry: ParkedRequest = {
          key: request.key,
          reason: request.reason,
          error,
          parked: parkedReasonOf(error),
          attempts: job.attemptsMade,
          parkedAt,
          firstFailedAt,
          jobId: job.id,
        };
        seen.set(id, entry);
        parked.push(entry);
      }
      if (jobs.length < page || parked.length >= limit) break;
    }
    return parked;
  }

  /** Parked requests by why they were parked, counted in Redis (`conveyor_parked_requests`). */
  async countParked(): Promise<Record<ParkedReason, number>> {
    const failed = bullmqKey(this.location, BULLMQ_KEY.failed);
    const [terminal, exhausted] = await this.scripts.countParked(failed, jobKeyPrefix(this.location), TERMINAL_ERROR_CODES);
    return { terminal, exhausted };
  }

  /**
   * Removes parked requests (of one key, or all) without running them, and the key's note in the
   * parked-keys set; returns how many. For a request that should never run again as it is: the
   * object's next change enqueues it afresh, and so would the next resync if it were still parked.
   */
  async discardParked(key?: ObjectKey): Promise<number> {
    const ids = await this.parkedIds(key);
    let discarded = 0;
    for (let start = 0; start < ids.length; start += BATCH_CHUNK) {
      const jobs = await Promise.all(ids.slice(start, start + BATCH_CHUNK).map((id) => this.queue.getJob(id)));
      await Promise.all(jobs.map((job) => job?.remove()));
      discarded += jobs.filter((job) => job !== undefined).length;
    }
    if (key === undefined) await this.connection.del(this.keys.parkedKeys);
    else await this.connection.srem(this.keys.parkedKeys, keyToJobId(key));
    if (discarded > 0) this.logger.info({ discarded }, 'parked requests discarded');
    return discarded;
  }

  /**
   * Re-enqueues parked requests (of one key, or all) and removes them from the parked set; returns
   * how many. Each gets a fresh job with fresh attempts that merges with any request the key already
   * has, so a retry never runs beside a newer job of the same key. The watcher calls this on resync.
   */
  async retryParked(key?: ObjectKey): Promise<number> {
    const ids = await this.parkedIds(key);
    let retried = 0;
    for (let start = 0; start < ids.length; start += BATCH_CHUNK) {
      const jobs = await Promise.all(ids.slice(start, start + BATCH_CHUNK).map((id) => this.queue.getJob(id)));
      const requests: EnqueueRequest[] = [];
      const done: typeof jobs = [];
      for (const job of jobs) {
        if (job === undefined || job.id === undefined) continue;
        const request = this.readRequest(job.id, job.data);
        if (request === undefined) {
          this.logger.warn({ jobId: job.id }, 'parked job belongs to no object key; left parked');
          continue;
        }
        const reason = request.reason === 'unknown' ? 'manual' : request.reason;
        requests.push(request.trace === undefined ? { key: request.key, reason } : { key: request.key, reason, trace: request.trace });
        done.push(job);
      }
      // Enqueue first, then remove: a crash in between leaves a duplicate parked entry, never a lost request.
      await this.enqueueBatch(requests);
      await Promise.all(done.map((job) => job?.remove()));
      retried += requests.length;
    }
    if (retried > 0) this.logger.info({ retried }, 'parked requests re-enqueued');
    return retried;
  }

  /**
   * Resolves true when the queue's epoch key vanished since this instance last looked: Redis lost the
   * queue (restart without persistence, failover to an empty replica, flush), so every request it
   * held is gone and the caller must relist and re-enqueue everything. Re-arms the key. The first
   * call arms it and resolves false (a starting watcher lists everything anyway). Also true when
   * another process re-armed the key after a loss this instance did not see.
   */
  async checkEpoch(): Promise<boolean> {
    const fresh = `${this.clock.now()}-${randomBytes(6).toString('hex')}`;
    // Sets the key only when missing and answers what was there before, in one step (Redis ≥ 7.0).
    const previous = await this.connection.set(this.keys.epoch, fresh, 'NX', 'GET');
    const current = previous ?? fresh;
    const lost = this.epoch !== undefined && current !== this.epoch;
    this.epoch = current;
    if (lost) this.logger.warn('queue epoch changed: Redis lost the queue; everything must be re-enqueued');
    return lost;
  }

  /** The Redis connection the queue uses (shared with the caller when it passed one in). */
  get redis(): RedisConnection {
    return this.connection;
  }

  /** Closes the queue (and its connection when it made it), without waiting long on an unreachable Redis. */
  async close(): Promise<void> {
    await settleWithin(this.queue.close(), CLOSE_WAIT_MS);
    if (this.ownsConnection) await closeRedisConnection(this.connection);
  }

  private toJob(request: EnqueueRequest): { name: string; data: ReturnType<typeof encodeRequest>; opts: JobsOptions & { jobId: string } } {
    const data = encodeRequest(request, this.clock.now());
    return {
      name: request.reason,
      data,
      opts: {
        ...jobOptions(this.settings),
        jobId: newJobId(request.key),
        priority: REASON_PRIORITY[request.reason],
        deduplication: deduplication(request.key, request.reason),
        // A resync waits in the backlog until a worker's resync lane admits it (lanes.ts).
        ...(request.reason === 'resync' ? { delay: RESYNC_BACKLOG_DELAY_MS } : {}),
      },
    };
  }

  /** Requests that merged into an existing job lend it their priority when it is better. */
  private async afterMerge(merged: readonly EnqueueRequest[]): Promise<void> {
    const raising = merged.filter((request) => request.reason !== 'resync');
    if (raising.length === 0) return;
    const prioritized = bullmqKey(this.location, BULLMQ_KEY.prioritized);
    const counter = bullmqKey(this.location, BULLMQ_KEY.priorityCounter);
    const prefix = jobKeyPrefix(this.location);
    await Promise.all(
      raising.map((request) =>
        this.scripts.raisePriority(
          [prioritized, counter, deduplicationKey(this.location, deduplication(request.key, request.reason).id)],
          prefix,
          REASON_PRIORITY[request.reason],
        ),
      ),
    );
  }

  /** Ids of the parked jobs of one key, or of all. */
  private async parkedIds(key: ObjectKey | undefined): Promise<string[]> {
    const failedKey = bullmqKey(this.location, BULLMQ_KEY.failed);
    return key === undefined
      ? await this.connection.zrange(failedKey, '0', '-1')
      : await scanJobIds(this.connection, failedKey, `${keyToJobId(key)}~`);
  }

  /** The first-failure times the queue worker noted on each job, in one pipeline. */
  private async firstFailures(ids: readonly (string | undefined)[]): Promise<(number | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.connection.pipeline();
    for (const id of ids) pipeline.hget(jobKey(this.location, id ?? ''), JOB_FIELD.firstFailedAt);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, value]) => {
      const at = error === null && typeof value === 'string' ? Number(value) : Number.NaN;
      return Number.isFinite(at) ? at : undefined;
    });
  }

  private readRequest(jobId: string, data: unknown): { key: ObjectKey; reason: RequestReason | 'unknown'; trace?: string } | undefined {
    try {
      return decodeRequest(data);
    } catch {
      const key = keyOfJobId(jobId);
      return key === undefined ? undefined : { key, reason: 'unknown' };
    }
  }
}
