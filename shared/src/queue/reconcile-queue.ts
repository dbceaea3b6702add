// The producer side of a controller's reconcile queue: enqueue with workqueue semantics, depth, parked requests, epoch, over every partition.
//
// A queue of `queue.partitions` N > 1 is N BullMQ queues, each with its own hash tag (redis-keys.ts);
// every request for one object key goes to the same partition (`partitionIndex` of the key), so each
// per-key promise below holds inside that partition exactly as in an unpartitioned queue, and the
// queue-wide answers (depth, parked requests, epoch) are gathered from every partition.
import { randomBytes } from 'node:crypto';
import { type JobsOptions, Queue } from 'bullmq';
import { type Clock, settleWithin, systemClock } from '../clock.ts';
import type { Config } from '../config.ts';
import { type ConfigError, TERMINAL_ERROR_CODES } from '../errors.ts';
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
  storedJobOptions,
} from './bullmq-internals.ts';
import { type Lane, RESYNC_BACKLOG_BAND_MS, RESYNC_BACKLOG_DELAY_MS } from './lanes.ts';
import { claimLayout, verifyLayout } from './partition-layout.ts';
import { type QueueBlockRecord, readQueueBlock } from './queue-block.ts';
import { type QueueScripts, queueScripts } from './queue-scripts.ts';
import { closeRedisConnection, createRedisConnection, type RedisConnection, reportRedisError, scanJobIds } from './redis-connection.ts';
import { type ControllerKeys, controllerKeys, jobIdKeyPart, type PartitionKeys, type QueueLocation } from './redis-keys.ts';
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

/** One object for every job: BullMQ only serializes it. */
const BACKOFF = { type: BACKOFF_STRATEGY } as const;

/**
 * Job options shared by every request. Completed jobs vanish; parked (failed) ones stay until retried,
 * which is BullMQ's default when `removeOnFail` is not given (the worker sets none either), so it is
 * not written into every job's options. `attempts` and `backoff` are: BullMQ 6.7 reads both only from
 * the job (a Worker has no default for either).
 */
function jobOptions(settings: QueueSettings): JobsOptions {
  return { attempts: settings.queue.attempts, backoff: BACKOFF, removeOnComplete: true };
}

/**
 * Random suffixes of job ids, 6 bytes each, cut from one 3 KiB draw instead of a draw per request
 * (a call into OpenSSL per enqueued request showed in B2's profile).
 */
const SUFFIX_BYTES = 6;
let suffixPool = Buffer.alloc(0);
let suffixAt = 0;

/** Job ids are unique per add (BullMQ ignores an add whose id exists, which would drop an event for a running key). */
function newJobId(encodedKey: string): string {
  if (suffixAt + SUFFIX_BYTES > suffixPool.length) {
    suffixPool = randomBytes(SUFFIX_BYTES * 512);
    suffixAt = 0;
  }
  const suffix = suffixPool.toString('base64url', suffixAt, suffixAt + SUFFIX_BYTES);
  suffixAt += SUFFIX_BYTES;
  return `${encodedKey}~${suffix}`;
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
 * The id is the encoded key (`keyToJobId`). Resync uses plain `{ id }`: it only makes sure a request
 * exists. It must not overwrite the kept next-request of a running key (BullMQ keeps the latest add's
 * options, so a resync would demote a fresh event's priority), nor pull a requeue-after or a backoff
 * forward; the running, delayed or waiting job already guarantees a reconcile that reads the current
 * object.
 */
function deduplication(id: string, reason: RequestReason): NonNullable<JobsOptions['deduplication']> {
  return reason === 'resync' ? { id } : { id, keepLastIfActive: true, reschedule: true };
}

/** One request as BullMQ adds it. */
interface QueueJob {
  name: RequestReason;
  data: ReturnType<typeof encodeRequest>;
  opts: JobsOptions & { jobId: string };
}

/** How long close() waits for BullMQ to finish with Redis before it lets go. */
const CLOSE_WAIT_MS = 2_000;

/** Longest pipeline one `enqueueBatch` sends at once. */
const BATCH_CHUNK = 1_000;

/**
 * Most resync requests one `addToBacklog` call adds. Redis runs a script to its end before it serves
 * another client, so a fresh event enqueued by another client (the watcher, while a replica or a relist
 * sends a resync) waits for the call in progress: about 1.6 ms of Redis time for 100 requests. B4
 * measured an idle client's PING p99 rising from about 3 ms to 40–50 ms while pipelines of 1,000 resync
 * adds went in; a tenth of that keeps the wait short and costs the resync little (it waits in the
 * backlog anyway).
 */
const RESYNC_BATCH_CHUNK = 100;

/** One BullMQ queue of the controller's partitioned queue. */
interface Partition {
  keys: PartitionKeys;
  queue: Queue;
  /** The epoch this instance last saw in the partition. */
  epoch: string | undefined;
}

export class ReconcileQueue {
  /** Where BullMQ keeps each partition of the queue, in partition order. */
  readonly locations: readonly QueueLocation[];
  private readonly keys: ControllerKeys;
  private readonly parts: readonly Partition[];
  private readonly settings: QueueSettings;
  private readonly connection: RedisConnection;
  private readonly ownsConnection: boolean;
  private readonly scripts: QueueScripts;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly onAdded: ((count: number) => void) | undefined;
  /** The partition layout: not yet compared with Redis's record, in use, or changed under this process (why, to reject writes with). */
  private layout: 'unchecked' | 'ok' | ConfigError = 'unchecked';
  private layoutCheck: Promise<void> | undefined;

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
    this.keys = controllerKeys(settings.redis.prefix, settings.controller, settings.queue.partitions);
    this.locations = this.keys.partitions.map((partition) => partition.queue);
    this.ownsConnection = deps.connection === undefined;
    this.logger = (deps.logger ?? createLogger({ level: 'silent' })).child({ queue: settings.controller });
    this.connection = deps.connection ?? createRedisConnection(settings.redis, { logger: this.logger });
    this.clock = deps.clock ?? systemClock;
    this.onAdded = deps.onAdded;
    this.parts = this.keys.partitions.map((keys) => {
      const queue = new Queue(keys.queue.name, {
        connection: this.connection,
        prefix: keys.queue.prefix,
        defaultJobOptions: jobOptions(settings),
      });
      queue.on('error', (error) => reportRedisError(this.connection, error, this.logger, 'queue error'));
      return { keys, queue, epoch: undefined };
    });
    this.scripts = queueScripts(this.connection);
  }

  /**
   * Asks for one reconcile of `request.key`.
   *
   * # Expected flow
   * The key becomes a job whose payload is identity only (payload v2: reason, time, trace; the key is
   * in the job id, request-payload.ts). If the key already has a waiting or delayed job, the request
   * merges into it; if the key is being reconciled, the request is kept and becomes a new job when
   * that reconcile ends.
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
   * - `ConfigError` when `queue.partitions` is not the queue's partition count in Redis and the queue
   *   holds requests (see {@link checkLayout}); nothing is written.
   * - Redis errors reject the promise; the request may or may not have been added. Retrying is safe:
   *   requests for one key merge.
   */
  async enqueue(request: EnqueueRequest): Promise<void> {
    const job = this.toJob(request);
    if (this.layout !== 'ok') await this.checkLayout();
    const part = this.partOf(request.key);
    // A resync request only ever goes to the backlog (lanes.ts), through addToBacklog.
    const holder =
      request.reason === 'resync' ? (await this.addToBacklog(part, [job]))[0] : (await part.queue.add(job.name, job.data, job.opts)).id;
    if (holder !== job.opts.jobId) await this.afterMerge(part, [request]);
    else this.onAdded?.(1);
  }

  /**
   * Enqueues many requests with the semantics of {@link enqueue}, pipelined (near BullMQ's `addBulk`
   * rate), for relists and resyncs. Every request is validated first: one bad key rejects the whole
   * batch and writes nothing. Requests for the same key inside one batch merge like separate calls.
   */
  async enqueueBatch(requests: readonly EnqueueRequest[]): Promise<void> {
    // One request, which is most of what a watcher sends below a few hundred events a second, goes
    // without a pipeline: ioredis builds every pipeline by copying each script BullMQ defines onto it.
    if (requests.length === 1) return this.enqueue(requests[0] as EnqueueRequest);
    const jobs = requests.map((request) => this.toJob(request));
    if (jobs.length === 0) return;
    if (this.layout !== 'ok') await this.checkLayout();
    const backlog = requests.every((request) => request.reason === 'resync');
    if (this.parts.length === 1) {
      await this.addInChunks(this.parts[0] as Partition, requests, jobs, backlog);
      return;
    }
    // Each partition's share, in the batch's order; partitions in parallel (on a cluster, on their own nodes).
    const shares = this.parts.map(() => ({ requests: [] as EnqueueRequest[], jobs: [] as typeof jobs }));
    requests.forEach((request, index) => {
      const job = jobs[index];
      if (job === undefined) return;
      const share = shares[this.keys.partitionOf(job.opts.jobId).index];
      if (share === undefined) return;
      share.requests.push(request);
      share.jobs.push(job);
    });
    await Promise.all(
      shares.map((share, index) =>
        share.jobs.length === 0 ? undefined : this.addInChunks(this.parts[index] as Partition, share.requests, share.jobs, backlog),
      ),
    );
  }

  private async addInChunks(
    part: Partition,
    requests: readonly EnqueueRequest[],
    jobs: readonly QueueJob[],
    backlog: boolean,
  ): Promise<void> {
    const chunkSize = backlog ? RESYNC_BATCH_CHUNK : BATCH_CHUNK;
    for (let start = 0; start < jobs.length; start += chunkSize) {
      const chunk = jobs.slice(start, start + chunkSize);
      const holders = backlog ? await this.addToBacklog(part, chunk) : (await part.queue.addBulk(chunk)).map((job) => job.id);
      const merged: EnqueueRequest[] = [];
      holders.forEach((holder, index) => {
        const request = requests[start + index];
        if (request !== undefined && holder !== chunk[index]?.opts.jobId) merged.push(request);
      });
      await this.afterMerge(part, merged);
      this.onAdded?.(chunk.length - merged.length);
    }
  }

  /**
   * Adds resync jobs to the backlog in one script call (addToBacklog in queue-scripts.ts), as BullMQ's
   * `addBulk` would add them but without its per-job cost; returns the id of the job that holds each one's
   * place (its own, or the job it merged into).
   */
  private async addToBacklog(part: Partition, jobs: readonly QueueJob[]): Promise<(string | undefined)[]> {
    const location = part.keys.queue;
    // Name, delay and priority are the same for every resync job (toJob): the script takes them once.
    const { name, opts } = jobs[0] as QueueJob;
    const args: string[] = [
      jobKeyPrefix(location),
      name,
      String(Date.now()), // BullMQ stamps a job with the wall clock when it is made, not with the queue's clock
      String(opts.delay),
      String(opts.priority),
    ];
    for (const job of jobs) {
      args.push(job.opts.jobId, job.opts.deduplication?.id ?? '', JSON.stringify(job.data), storedJobOptions(job.opts));
    }
    const keys = [BULLMQ_KEY.meta, BULLMQ_KEY.id, BULLMQ_KEY.delayed, BULLMQ_KEY.events].map((type) => bullmqKey(location, type));
    return this.scripts.addToBacklog(keys, args);
  }

  /** Request counts by state and by lane, summed over the partitions: one Lua script (one round trip) per partition, in parallel. */
  async getDepth(): Promise<Depth> {
    const types = [BULLMQ_KEY.wait, BULLMQ_KEY.paused, BULLMQ_KEY.prioritized, BULLMQ_KEY.delayed, BULLMQ_KEY.active, BULLMQ_KEY.failed];
    const now = Math.floor(this.clock.now());
    const scores = [
      // Every delayed job due by now scores below the first score of the next millisecond.
      String(delayedScore(now + 1)),
      String(delayedScore(now + RESYNC_BACKLOG_BAND_MS)),
      String(prioritizedScore(REASON_PRIORITY.manual, 0)),
      String(prioritizedScore(REASON_PRIORITY.resync, 0)),
    ];
    const perPartition = await Promise.all(
      this.parts.map((part) =>
        this.scripts.depthCounts(
          types.map((type) => bullmqKey(part.keys.queue, type)),
          scores,
        ),
      ),
    );
    const counts = perPartition.reduce((sum, next) => sum.map((n, i) => n + (next[i] ?? 0)));
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

  /** Worker processes (container workers, dispatchers) connected to this queue right now: every worker consumes every partition, so the first tells. */
  async getWorkerCount(): Promise<number> {
    return await (this.parts[0] as Partition).queue.getWorkersCount();
  }

  /**
   * Parked requests, most recently parked first, one per object key: a key can have two parked jobs
   * (a request that arrived while the first ran, then failed too), and a person wants to see the
   * object once, with its latest error. `limit` counts keys.
   */
  async listParked(limit = 100): Promise<ParkedRequest[]> {
    // A key lives in one partition, so each partition's list is already one per key: merge them by time.
    const lists = await Promise.all(this.parts.map((part) => this.listParkedIn(part, limit)));
    return lists
      .flat()
      .sort((a, b) => b.parkedAt - a.parkedAt)
      .slice(0, limit);
  }

  private async listParkedIn(part: Partition, limit: number): Promise<ParkedRequest[]> {
    const parked: ParkedRequest[] = [];
    const seen = new Map<string, ParkedRequest>();
    const page = Math.max(1, limit);
    for (let start = 0; parked.length < limit; start += page) {
      const jobs = await part.queue.getFailed(start, start + page - 1);
      const firstFailures = await this.firstFailures(
        part,
        jobs.map((job) => job?.id),
      );
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

  /** Parked requests by why they were parked, counted in Redis over every partition (`conveyor_parked_requests`). */
  async countParked(): Promise<Record<ParkedReason, number>> {
    const counts = await Promise.all(
      this.parts.map((part) =>
        this.scripts.countParked(bullmqKey(part.keys.queue, BULLMQ_KEY.failed), jobKeyPrefix(part.keys.queue), TERMINAL_ERROR_CODES),
      ),
    );
    return counts.reduce((sum, [terminal, exhausted]) => ({ terminal: sum.terminal + terminal, exhausted: sum.exhausted + exhausted }), {
      terminal: 0,
      exhausted: 0,
    });
  }

  /**
   * Removes parked requests (of one key, or all) without running them, and the key's note in the
   * parked-keys set; returns how many. For a request that should never run again as it is: the
   * object's next change enqueues it afresh, and so would the next resync if it were still parked.
   */
  async discardParked(key?: ObjectKey): Promise<number> {
    let discarded = 0;
    for (const part of key === undefined ? this.parts : [this.partOf(key)]) {
      const ids = await this.parkedIds(part, key);
      for (let start = 0; start < ids.length; start += BATCH_CHUNK) {
        const jobs = await Promise.all(ids.slice(start, start + BATCH_CHUNK).map((id) => part.queue.getJob(id)));
        await Promise.all(jobs.map((job) => job?.remove()));
        discarded += jobs.filter((job) => job !== undefined).length;
      }
      if (key === undefined) await this.connection.del(part.keys.parkedKeys);
      else await this.connection.srem(part.keys.parkedKeys, keyToJobId(key));
    }
    if (discarded > 0) this.logger.info({ discarded }, 'parked requests discarded');
    return discarded;
  }

  /**
   * Re-enqueues parked requests (of one key, or all) and removes them from the parked set; returns
   * how many. Each gets a fresh job with fresh attempts that merges with any request the key already
   * has, so a retry never runs beside a newer job of the same key. The watcher calls this on resync.
   */
  async retryParked(key?: ObjectKey): Promise<number> {
    let retried = 0;
    for (const part of key === undefined ? this.parts : [this.partOf(key)]) retried += await this.retryParkedIn(part, key);
    if (retried > 0) this.logger.info({ retried }, 'parked requests re-enqueued');
    return retried;
  }

  private async retryParkedIn(part: Partition, key: ObjectKey | undefined): Promise<number> {
    const ids = await this.parkedIds(part, key);
    let retried = 0;
    for (let start = 0; start < ids.length; start += BATCH_CHUNK) {
      const jobs = await Promise.all(ids.slice(start, start + BATCH_CHUNK).map((id) => part.queue.getJob(id)));
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
    return retried;
  }

  /**
   * Resolves true when the epoch key of any partition vanished since this instance last looked: Redis
   * lost that partition (restart without persistence, failover to an empty replica, flush; on a
   * cluster, one node), so the requests it held are gone and the caller must relist and re-enqueue
   * everything. Re-arms the keys. The first call arms them and resolves false (a starting watcher lists
   * everything anyway). Also true when another process re-armed a key after a loss this instance did
   * not see.
   *
   * Also checks that the queue's partition count in Redis is still this instance's (another process
   * may have replaced an empty layout, see partition-layout.ts): if not, rejects with that ConfigError,
   * and so do enqueues until the counts agree again.
   */
  async checkEpoch(): Promise<boolean> {
    if (this.layout !== 'unchecked') {
      try {
        if (!(await verifyLayout(this.connection, this.keys))) await this.checkLayout();
        this.layout = 'ok';
      } catch (error) {
        this.layout = error as ConfigError;
        throw error;
      }
    }
    const lost = await Promise.all(this.parts.map((part) => this.checkPartitionEpoch(part)));
    const lostAny = lost.some(Boolean);
    if (lostAny)
      this.logger.warn(
        { partitions: lost.flatMap((l, i) => (l ? [i] : [])) },
        'queue epoch changed: Redis lost the queue; everything must be re-enqueued',
      );
    return lostAny;
  }

  private async checkPartitionEpoch(part: Partition): Promise<boolean> {
    const fresh = `${this.clock.now()}-${randomBytes(6).toString('hex')}`;
    // Sets the key only when missing and answers what was there before, in one step (Redis ≥ 7.0).
    const previous = await this.connection.set(part.keys.epoch, fresh, 'NX', 'GET');
    const current = previous ?? fresh;
    const lost = part.epoch !== undefined && current !== part.epoch;
    part.epoch = current;
    return lost;
  }

  /**
   * Compares `queue.partitions` with the partition count recorded for the queue in Redis, and records
   * it when none was, or when the recorded layout holds no request (partition-layout.ts). Enqueues do
   * this before their first write; workers and dispatchers call it before they take requests.
   *
   * # Errors
   * `ConfigError` (path `queue.partitions`) when the counts differ and the queue holds requests.
   */
  async checkLayout(): Promise<void> {
    // Concurrent enqueues share one check.
    this.layoutCheck ??= (async () => {
      // Once another process changed the record under this one, only a record equal to ours again lets it write.
      if (this.layout instanceof Error) await verifyLayout(this.connection, this.keys);
      const { prefix } = this.settings.redis;
      const { changedFrom } = await claimLayout(this.connection, this.scripts, prefix, this.settings.controller, this.keys);
      if (changedFrom !== undefined) {
        this.logger.warn({ from: changedFrom, to: this.parts.length }, 'queue partition count changed; the old layout held no request');
      }
      this.layout = 'ok';
    })().finally(() => {
      this.layoutCheck = undefined;
    });
    await this.layoutCheck;
  }

  /** The Redis connection the queue uses (shared with the caller when it passed one in). */
  get redis(): RedisConnection {
    return this.connection;
  }

  /** Closes the queue (and its connection when it made it), without waiting long on an unreachable Redis. */
  async close(): Promise<void> {
    await settleWithin(Promise.all(this.parts.map((part) => part.queue.close())), CLOSE_WAIT_MS);
    if (this.ownsConnection) await closeRedisConnection(this.connection);
  }

  private toJob(request: EnqueueRequest): QueueJob {
    // The key is formatted (and validated) once: the job id, the deduplication id and, read back from
    // the job id, the payload's key all come from it.
    const id = keyToJobId(request.key);
    const opts: QueueJob['opts'] = {
      ...jobOptions(this.settings),
      jobId: newJobId(id),
      priority: REASON_PRIORITY[request.reason],
      deduplication: deduplication(id, request.reason),
    };
    // A resync waits in the backlog until a worker's resync lane admits it (lanes.ts).
    if (request.reason === 'resync') opts.delay = RESYNC_BACKLOG_DELAY_MS;
    return { name: request.reason, data: encodeRequest(request, this.clock.now()), opts };
  }

  /** The partition of a key's requests. */
  private partOf(key: ObjectKey): Partition {
    return this.parts.length === 1 ? (this.parts[0] as Partition) : (this.parts[this.keys.partitionOf(keyToJobId(key)).index] as Partition);
  }

  /** Requests that merged into an existing job lend it their priority when it is better. */
  private async afterMerge(part: Partition, merged: readonly EnqueueRequest[]): Promise<void> {
    const raising = merged.filter((request) => request.reason !== 'resync');
    if (raising.length === 0) return;
    const location = part.keys.queue;
    const prioritized = bullmqKey(location, BULLMQ_KEY.prioritized);
    const counter = bullmqKey(location, BULLMQ_KEY.priorityCounter);
    const prefix = jobKeyPrefix(location);
    await Promise.all(
      raising.map((request) =>
        this.scripts.raisePriority(
          [prioritized, counter, deduplicationKey(location, keyToJobId(request.key))],
          prefix,
          REASON_PRIORITY[request.reason],
        ),
      ),
    );
  }

  /** Ids of the parked jobs of one key, or of all, in one partition. */
  private async parkedIds(part: Partition, key: ObjectKey | undefined): Promise<string[]> {
    const failedKey = bullmqKey(part.keys.queue, BULLMQ_KEY.failed);
    return key === undefined
      ? await this.connection.zrange(failedKey, '0', '-1')
      : await scanJobIds(this.connection, failedKey, `${keyToJobId(key)}~`);
  }

  /** The first-failure times the queue worker noted on each job, in one pipeline. */
  private async firstFailures(part: Partition, ids: readonly (string | undefined)[]): Promise<(number | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.connection.pipeline();
    for (const id of ids) pipeline.hget(jobKey(part.keys.queue, id ?? ''), JOB_FIELD.firstFailedAt);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, value]) => {
      const at = error === null && typeof value === 'string' ? Number(value) : Number.NaN;
      return Number.isFinite(at) ? at : undefined;
    });
  }

  private readRequest(jobId: string, data: unknown): { key: ObjectKey; reason: RequestReason | 'unknown'; trace?: string } | undefined {
    try {
      return decodeRequest(data, jobId);
    } catch {
      const key = keyOfJobId(jobId);
      return key === undefined ? undefined : { key, reason: 'unknown' };
    }
  }
}
