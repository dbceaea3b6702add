// The consumer side of a controller's reconcile queue: a BullMQ Worker per partition that runs a processor per request and applies its Outcome.
import { type Job, UnrecoverableError, type Worker } from 'bullmq';
import { backoffDelay } from '../backoff.ts';
import { type Clock, settleWithin, systemClock } from '../clock.ts';
import { errorMessage } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { ObjectKey } from '../object-key.ts';
import { formatKey } from '../object-key.ts';
import { type Outcome, outcomeFromError } from '../outcome.ts';
import { applyOutcome, checkOutcome, followOutcomes, type OutcomeFollower, ReconcileFailedError } from './apply-outcome.ts';
import { BULLMQ_KEY, bullmqKey, deduplicationNextKey, JOB_FIELD, jobKey, READY_MARKER_MEMBER } from './bullmq-internals.ts';
import { FillingWorker } from './filling-worker.ts';
import { handBackToBacklog, LaneGate, laneOf, type ResyncAdmission, startResyncAdmission } from './lanes.ts';
import { QueueBlock } from './queue-block.ts';
import { queueScripts, unstarter } from './queue-scripts.ts';
import type { QueueSettings } from './reconcile-queue.ts';
import { closeRedisConnection, createRedisConnection, type RedisConnection } from './redis-connection.ts';
import { controllerKeys, type PartitionKeys } from './redis-keys.ts';
import { decodeRequest, type RequestReason } from './request-payload.ts';

/** What a processor learns about the request it runs: identity, never the object. */
export interface RequestContext {
  key: ObjectKey;
  reason: RequestReason;
  /** When the request that created this job was made (ms since the epoch). */
  enqueuedAt: number;
  /** 1 for the first attempt; grows with each error retry (requeue-after and throttling use none). */
  attempt: number;
  jobId: string;
  /** The lock token this run holds on its job: the fence of its own-write records. */
  lockToken?: string;
  /**
   * How many times this job has been started, this run included (requeue-afters and retries run the same job again);
   * a fetch handed back unstarted (a full resync lane, a batch the worker did not take) does not count.
   */
  runs: number;
  /** W3C `traceparent` of the request's origin (the watch event, the API call). */
  trace?: string;
  /** When the watcher saw the event behind this request (ms since the epoch). */
  eventAt?: number;
}

export interface QueueWorkerOptions extends QueueSettings {
  concurrency: number;
  /** Runs one reconcile. A throw is treated as `outcomeFromError(e)`. */
  processor: (request: RequestContext) => Promise<Outcome>;
  logger?: Logger;
  /** Reuse a connection (the worker still opens its own blocking one). */
  connection?: RedisConnection;
  /** How many times a job may lose its worker (crash, lost lock) before it is parked. @defaultValue 1 */
  maxStalledCount?: number;
  /** @defaultValue systemClock */
  clock?: Clock;
  /** How often an idle worker looks for a resync backlog to admit (lanes.ts). @defaultValue 1000 */
  admitIntervalMs?: number;
  /** Told when this worker finds the queue blocked by a failure no retry can fix (true), and when a request gets past it (false). */
  onBlockedChange?: (blocked: boolean) => void;
}

export interface QueueWorker {
  /** Stop taking jobs; wait up to graceMs for running ones; leave nothing locked. */
  close(graceMs?: number): Promise<void>;
  setConcurrency(n: number): void;
}

/**
 * A limiter so high it never limits. BullMQ only honours a manual `rateLimit` (our queue-wide pause
 * on throttling) when the worker has a limiter, so a worker without a configured one gets this.
 */
const UNLIMITED = { max: 1_000_000_000, duration: 1_000 };

/** The queue-wide limiter's share of one of `partitions` partitions (BullMQ keeps a limiter per queue). */
function partitionLimiter(limiter: QueueSettings['queue']['limiter'], partitions: number): { max: number; duration: number } {
  if (limiter === undefined) return UNLIMITED;
  return { max: Math.max(1, Math.floor(limiter.max / partitions)), duration: limiter.duration };
}

/** How long each step after the grace period may take before close() gives up on it. */
const CLOSE_STEP_MS = 2_000;

/**
 * Starts a worker on the controller's queue.
 *
 * # Lock settings and the lock-loss caveat
 * A running job holds a lock for `queue.lockDuration`, renewed every half of it. A worker that dies
 * stops renewing; after the lock expires, the next stalled check (every `queue.stalledInterval`) puts
 * the job back to waiting, so recovery after a crash takes up to lockDuration + stalledInterval. A
 * worker whose event loop is blocked past `lockDuration` also loses its lock while its reconcile is
 * still running, and another worker may start the same key: the two overlap. BullMQ cannot prevent
 * that, so every write a reconcile makes must be guarded by the object's `resourceVersion` (update
 * with RV, JSON patch with a `test` op): the stale run then fails with 409 and is retried instead of
 * overwriting. Short lock settings recover faster and make the overlap likelier; keep lockDuration
 * well above the longest synchronous stretch of a reconcile.
 *
 * # Partitions
 * With `queue.partitions` N > 1 the worker runs one BullMQ Worker per partition (each with its own
 * blocking connection), so every worker process consumes every partition. Its concurrency is split over
 * them ({@link concurrencyShares}), and so is `queue.limiter` (each partition gets `max / N`, at least
 * 1). A throttle or a block pauses every partition. One key's requests all live in one partition, so
 * "one reconcile per key at a time", merging and dirty-while-running hold as in one queue; priorities
 * order requests within a partition.
 */
export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const keys = controllerKeys(options.redis.prefix, options.controller, options.queue.partitions);
  const ownsConnection = options.connection === undefined;
  const logger = (options.logger ?? createLogger({ level: 'silent' })).child({ queue: options.controller });
  const connection = options.connection ?? createRedisConnection(options.redis, { logger });
  const clock = options.clock ?? systemClock;
  const running = new Map<string, { job: Job; token: string }>();
  // Resolved when the last running reconcile ends, for a close that cannot rely on BullMQ's own wait.
  let noneRunning: PromiseWithResolvers<void> | undefined;
  const whenNoneRunning = (): Promise<void> => {
    if (running.size === 0) return Promise.resolve();
    noneRunning ??= Promise.withResolvers<void>();
    return noneRunning.promise;
  };
  const idle = (): void => {
    noneRunning?.resolve();
    noneRunning = undefined;
  };
  const partitions: PartitionConsumer[] = [];
  // A throttle or a block pauses the whole queue: every partition, for every worker (BullMQ keeps the pause in each partition's limiter key).
  // BullMQ puts a job that ended in a pause back among the prioritized without the ready marker, so a
  // worker already blocked waiting for a job would sleep past the pause's end until its drainDelay (5 s):
  // the marker is set when the pause ends.
  let wake: { cancel(): void } | undefined;
  const rateLimit = async (ms: number): Promise<void> => {
    await Promise.all(partitions.map((partition) => partition.worker.rateLimit(ms)));
    wake?.cancel();
    wake = clock.setTimeout(() => {
      for (const partition of keys.partitions) {
        connection
          .zadd(bullmqKey(partition.queue, BULLMQ_KEY.marker), 0, READY_MARKER_MEMBER)
          .catch((error: unknown) => logger.debug({ err: errorMessage(error) }, 'could not wake workers after a pause'));
      }
    }, ms);
  };
  const block = new QueueBlock({
    connection,
    key: keys.blocked,
    pauseMs: options.queue.blockedPause,
    now: () => clock.now(),
    rateLimit,
    logger,
    ...(options.onBlockedChange === undefined ? {} : { onChange: options.onBlockedChange }),
  });
  const shared: SharedDeps = { options, connection, clock, logger, running, idle, block, rateLimit };
  const shares = concurrencyShares(options.concurrency, keys.partitions.length);
  for (const partition of keys.partitions) partitions.push(startPartitionConsumer(partition, shares[partition.index] ?? 1, shared));

  return {
    setConcurrency(n: number): void {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a positive integer, got ${n}`);
      const next = concurrencyShares(n, partitions.length);
      for (const [index, partition] of partitions.entries()) partition.setConcurrency(next[index] ?? 1);
    },
    async close(graceMs = 30_000): Promise<void> {
      for (const partition of partitions) {
        partition.admission.stop();
        partition.gate.releaseHeld();
      }
      if (connection.status !== 'ready') {
        await closeWhileRedisAway(graceMs);
        if (ownsConnection) await closeRedisConnection(connection);
        return;
      }
      const finished = await settleWithin(Promise.all(partitions.map((partition) => partition.worker.close())), graceMs);
      if (!finished) {
        // Reconciles still running past the grace period (or Redis unreachable, so BullMQ cannot
        // finish): hand their jobs back to waiting now instead of leaving them locked until the lock
        // expires, then stop without waiting for them. Each step is bounded: Redis may be away.
        const left = [...running.values()];
        logger.warn({ jobs: left.length, graceMs }, 'reconciles still running after the grace period; returning their jobs to the queue');
        await settleWithin(Promise.all(left.map(({ job, token }) => job.moveToWait(token))), CLOSE_STEP_MS);
        await settleWithin(Promise.all(partitions.map((partition) => partition.worker.close(true))), CLOSE_STEP_MS);
      }
      if (ownsConnection) await closeRedisConnection(connection);
    },
  };

  /**
   * BullMQ's close() waits for its blocking connection to end, which it never does while it reconnects
   * to an unreachable Redis, and a later close(true) only returns that same wait. So: stop fetching,
   * wait up to the grace period for the reconciles that run (none: no wait at all), then close forced.
   * A job still running then cannot be handed back without Redis; it runs again once its lock expires.
   */
  async function closeWhileRedisAway(graceMs: number): Promise<void> {
    await settleWithin(Promise.all(partitions.map((partition) => partition.worker.pause(true))), CLOSE_STEP_MS);
    const drained = await settleWithin(whenNoneRunning(), graceMs);
    if (!drained) {
      logger.warn(
        { jobs: running.size, graceMs },
        'reconciles still running after the grace period while Redis is unreachable; their requests run again once their locks expire',
      );
    }
    await settleWithin(Promise.all(partitions.map((partition) => partition.worker.close(true))), CLOSE_STEP_MS);
  }
}

/**
 * A worker's concurrency split over the partitions, as evenly as it goes: partitions receive requests
 * in equal shares (a key's partition is a hash), and each gets at least one slot so none is left
 * without a consumer; with fewer slots than partitions a worker so runs one reconcile per partition.
 */
export function concurrencyShares(concurrency: number, partitions: number): number[] {
  const base = Math.floor(concurrency / partitions);
  const extra = concurrency % partitions;
  return Array.from({ length: partitions }, (_, index) => Math.max(1, base + (index < extra ? 1 : 0)));
}

/** What every partition's consumer in one worker shares. */
interface SharedDeps {
  options: QueueWorkerOptions;
  connection: RedisConnection;
  clock: Clock;
  logger: Logger;
  running: Map<string, { job: Job; token: string }>;
  /** No reconcile runs any more (the last one just ended). */
  idle(): void;
  block: QueueBlock;
  rateLimit(ms: number): Promise<void>;
}

/** The consumer of one partition: its BullMQ Worker, its lanes and its admission of resync jobs. */
interface PartitionConsumer {
  worker: Worker;
  admission: ResyncAdmission;
  gate: LaneGate;
  setConcurrency(n: number): void;
}

function startPartitionConsumer(partition: PartitionKeys, concurrency: number, shared: SharedDeps): PartitionConsumer {
  const { options, connection, clock, running } = shared;
  const location = partition.queue;
  const logger =
    partition.index === 0 && options.queue.partitions === 1 ? shared.logger : shared.logger.child({ partition: partition.index });
  const scripts = queueScripts(connection);
  const now = () => clock.now();

  const pullForwardIfDirty = async (job: Job): Promise<void> => {
    if (job.id === undefined || job.deduplicationId === undefined) return;
    const keys = [
      bullmqKey(location, BULLMQ_KEY.delayed),
      bullmqKey(location, BULLMQ_KEY.marker),
      deduplicationNextKey(location, job.deduplicationId),
      jobKey(location, job.id),
    ];
    const pulled = await scripts.pullForwardIfDirty(keys, job.id, now());
    if (pulled === 1) logger.debug({ jobId: job.id }, 'request arrived during the reconcile: delayed job pulled forward');
  };

  // Lanes: a resync never holds more than its share of this worker's slots while fresh work runs (lanes.ts).
  const gate = new LaneGate(concurrency, options.queue.resyncShare, now);
  const admission = startResyncAdmission({ scripts, location, gate, now, logger, intervalMs: options.admitIntervalMs ?? 1_000 });
  // One for the resync jobs the lanes hand back and the batch-fetched jobs the worker does not take.
  const unstart = unstarter(scripts, location, logger);
  let follower: OutcomeFollower | undefined;
  const process = jobRunner(options, {
    succeeded: (job) => follower?.succeeded(job),
    logger,
    now,
    running,
    idle: shared.idle,
    pullForwardIfDirty,
    unstart,
    rateLimit: shared.rateLimit,
    block: shared.block,
    gate,
    admission,
  });

  const worker = new FillingWorker(
    location.name,
    process,
    {
      connection,
      prefix: location.prefix,
      concurrency,
      lockDuration: options.queue.lockDuration,
      stalledInterval: options.queue.stalledInterval,
      maxStalledCount: options.maxStalledCount ?? 1,
      limiter: partitionLimiter(options.queue.limiter, options.queue.partitions),
      settings: {
        // The controller's errorPolicy may have chosen this retry's delay; otherwise the per-key exponential backoff.
        backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
          error instanceof ReconcileFailedError && error.delayMs !== undefined
            ? error.delayMs
            : backoffDelay(Math.max(1, attemptsMade), options.queue.backoff),
      },
    },
    { connection, location, logger, unstart },
  );
  // A resync job held for its lane (lanes.ts) is active in BullMQ but runs no reconcile: one more fetch per held job keeps its slot free.
  gate.onHeldChange = (held) => {
    worker.concurrency = gate.slots + held;
  };
  follower = followOutcomes(worker, {
    connection,
    parkedKeys: partition.parkedKeys,
    failedKey: bullmqKey(location, BULLMQ_KEY.failed),
    jobKey: (id) => jobKey(location, id),
    firstFailedField: JOB_FIELD.firstFailedAt,
    noteFirstFailure: (id, at) => scripts.noteFirstFailure(jobKey(location, id), at),
    pullForwardIfDirty,
    clock,
    logger,
  });
  return {
    worker,
    admission,
    gate,
    setConcurrency(n) {
      gate.setConcurrency(n);
      worker.concurrency = n + gate.heldCount;
      void admission.admit(true);
    },
  };
}

/** What a running job needs besides the options. */
interface JobRunnerDeps {
  logger: Logger;
  now: () => number;
  /** Jobs running now, with their lock tokens (close() hands them back after the grace period). */
  running: Map<string, { job: Job; token: string }>;
  /** No reconcile runs any more (the last one just ended). */
  idle(): void;
  pullForwardIfDirty(job: Job): Promise<void>;
  /** Takes back the start BullMQ counted for a job handed back unstarted. */
  unstart(job: Job, token: string): Promise<void>;
  rateLimit(ms: number): Promise<void>;
  block: QueueBlock;
  gate: LaneGate;
  admission: ResyncAdmission;
  /** A reconcile of the job succeeded (done or requeue-after): its key's parked requests go. */
  succeeded(job: Job): void;
}

/**
 * The BullMQ processor: take a slot of the job's lane (or hand a resync job back to the backlog), decode
 * the request, run the user's processor, apply its outcome; then admit resync jobs into the freed slot.
 */
function jobRunner(options: QueueWorkerOptions, d: JobRunnerDeps): (job: Job, token?: string) => Promise<void> {
  const { logger, now, running, pullForwardIfDirty, unstart, gate, admission } = d;
  return async (job: Job, token?: string): Promise<void> => {
    const jobId = job.id ?? '';
    if (token === undefined) throw new Error('BullMQ gave the processor no lock token');
    const lane = laneOf(job);
    if (!gate.tryStart(lane) && !(await gate.hold())) await handBackToBacklog(job, token, now, pullForwardIfDirty, unstart);
    running.set(jobId, { job, token });
    try {
      let request: ReturnType<typeof decodeRequest>;
      try {
        request = decodeRequest(job.data, jobId);
      } catch (error) {
        logger.error({ jobId, err: errorMessage(error) }, 'parking a job whose payload cannot be read');
        throw new UnrecoverableError(`PAYLOAD_INVALID: ${errorMessage(error)}`);
      }
      const context: RequestContext = {
        key: request.key,
        reason: request.reason,
        enqueuedAt: request.at,
        attempt: job.attemptsMade + 1,
        jobId,
        runs: Math.max(1, job.attemptsStarted),
      };
      if (request.trace !== undefined) context.trace = request.trace;
      if (token !== undefined) context.lockToken = token;
      if (request.eventAt !== undefined) context.eventAt = request.eventAt;
      let outcome: Outcome;
      try {
        outcome = checkOutcome(await options.processor(context));
      } catch (error) {
        outcome = outcomeFromError(error);
      }
      if (outcome.kind === 'error' || outcome.kind === 'terminal') {
        logger.warn({ jobId, key: formatKey(request.key), attempt: context.attempt, outcome }, 'reconcile failed');
      } else if (outcome.kind === 'done' || outcome.kind === 'requeueAfter') {
        d.succeeded(job);
      }
      // Any ending but a pause means the request got past whatever blocked the queue.
      if (outcome.kind !== 'blocked' && outcome.kind !== 'throttled') d.block.cleared();
      await applyOutcome(outcome, {
        job,
        token,
        now,
        rateLimit: d.rateLimit,
        block: (blocked) => d.block.block(blocked),
        pullForwardIfDirty,
      });
    } finally {
      running.delete(jobId);
      if (running.size === 0) d.idle();
      gate.finish(lane);
      // Before BullMQ completes this job (and maybe fetches the next in the same step): the freed slot then
      // sees the admitted resync job, unless fresh work is ready, which it takes first. With a blocking
      // fetch already under way BullMQ fetches nothing on completion, so the marker must wake it.
      if (admission.backlogSeen) await admission.admit(true);
    }
  };
}
