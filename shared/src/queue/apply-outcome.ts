// The one place that turns a reconcile's Outcome into a BullMQ queue action, and keeps track of the requests it parks.
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Clock } from '../clock.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Outcome, parseOutcome } from '../outcome.ts';
import { type RedisConnection, reportRedisError, scanJobIds } from './redis-connection.ts';
import { jobIdKeyPart } from './redis-keys.ts';

/** What applying an outcome needs from the running worker. */
export interface OutcomeTarget {
  job: Job;
  /** The worker's lock token for this job. */
  token: string;
  now(): number;
  /** Pauses the whole queue (every worker, every key) for `ms`. */
  rateLimit(ms: number): Promise<void>;
  /** Pauses the whole queue for `queue.blockedPause` and records (and logs, once) why: see `blocked` below. */
  block(outcome: Extract<Outcome, { kind: 'blocked' }>): Promise<void>;
  /** Makes the job due now if a request for its key arrived while it ran (see queue-scripts.ts). */
  pullForwardIfDirty(job: Job): Promise<void>;
}

/**
 * A retryable reconcile failure; BullMQ retries it with the queue's backoff, or after `delayMs` when the
 * controller's errorPolicy chose a delay (the queue worker's backoff strategy reads it). Its message is `CODE: message`.
 */
export class ReconcileFailedError extends Error {
  readonly delayMs: number | undefined;

  constructor(message: string, delayMs?: number) {
    super(message);
    this.name = 'ReconcileFailedError';
    this.delayMs = delayMs;
  }
}

/**
 * Applies `outcome` to the job that produced it. Called by the worker's processor; it resolves for
 * `done` (BullMQ then completes the job) and throws BullMQ's control errors otherwise.
 *
 * # Expected flow
 * - `done` → the job completes and is removed. A request that arrived while it ran becomes a new job.
 * - `requeueAfter(d)` → the same job moves to delayed for `d` (`moveToDelayed` + `DelayedError`), no
 *   attempt used. A fresh event pulls it forward (`reschedule`); so does one that arrived while it ran.
 * - `error` → BullMQ retries it after the per-key exponential backoff (`backoffDelay`), or after the
 *   outcome's `delayMs` (the controller's errorPolicy), one attempt used; after `queue.attempts`
 *   attempts it is parked in the failed set with this error.
 * - `terminal` → parked at once (`UnrecoverableError`), no retry.
 * - `throttled(retryAfter)` → the whole queue pauses for `retryAfter` (`rateLimit` +
 *   `RateLimitError`): this job goes back to waiting with no attempt used, and no worker starts any
 *   job until the pause ends.
 * - `blocked` (a failure no retry of any request can fix: missing or refused credentials, a function
 *   that does not exist, access denied) → as `throttled`, for `queue.blockedPause`, and the reason
 *   is recorded in Redis for `conveyor status` and logged once. The first request after the pause
 *   probes: it succeeds once someone fixed the setup (the record is then cleared), or pauses again.
 *   Requests keep their attempts, so a configuration mistake never parks the backlog.
 *
 * # Guarantees
 * Every outcome ends in completion, a delay, a retry or a parked job with its reason: never a drop.
 * A request for the key that arrived during the reconcile is never delayed behind a requeue-after or
 * backoff of this run.
 *
 * # Errors
 * If the worker lost its lock on the job (it stalled and another worker took it), BullMQ rejects the
 * move; the error propagates, the job stays with its new holder, and nothing is applied twice.
 */
export async function applyOutcome(outcome: Outcome, target: OutcomeTarget): Promise<void> {
  switch (outcome.kind) {
    case 'done':
      return;
    case 'requeueAfter':
      await target.job.moveToDelayed(target.now() + outcome.delayMs, target.token);
      await target.pullForwardIfDirty(target.job);
      throw new DelayedError(`requeue after ${outcome.delayMs}ms`);
    case 'error':
      throw new ReconcileFailedError(`${outcome.code}: ${outcome.message}`, outcome.delayMs);
    case 'terminal':
      throw new UnrecoverableError(`${outcome.code}: ${outcome.message}`);
    case 'throttled':
      await target.rateLimit(Math.max(1, Math.ceil(outcome.retryAfterMs)));
      throw Worker.RateLimitError();
    case 'blocked':
      await target.block(outcome);
      throw Worker.RateLimitError();
    default:
      throw new ReconcileFailedError(`OUTCOME_INVALID: the processor returned ${JSON.stringify(outcome)}, which is not an outcome`);
  }
}

/** Accepts only well-formed outcomes; anything else (say, a Lambda's malformed reply) becomes a retryable error. */
export function checkOutcome(value: unknown): Outcome {
  const parsed = parseOutcome(value);
  if ('outcome' in parsed) return parsed.outcome;
  return {
    kind: 'error',
    code: 'OUTCOME_INVALID',
    message: `not an outcome (${parsed.problem}): ${JSON.stringify(value) ?? String(value)}`,
  };
}

export interface OutcomeFollowerDeps {
  connection: RedisConnection;
  /** The set of keys with a parked request (redis-keys.ts). */
  parkedKeys: string;
  /** BullMQ's failed set: where parked requests live. */
  failedKey: string;
  /** The hash of a job (bullmq-internals.ts), where its first failure is noted. */
  jobKey(jobId: string): string;
  /** The job-hash field of that note (`JOB_FIELD.firstFailedAt`). */
  firstFailedField: string;
  /** Notes a job's first failure in its hash (`noteFirstFailure` in queue-scripts.ts): only while the job exists. */
  noteFirstFailure(jobId: string, at: number): Promise<unknown>;
  pullForwardIfDirty(job: Job): Promise<void>;
  clock: Clock;
  logger: Logger;
}

export interface OutcomeFollower {
  /**
   * A reconcile of `job` succeeded (done or requeue-after, before the queue applies it): the parked requests
   * of its key no longer say anything true about the object and are removed, and a first-failure note left
   * by an earlier failed attempt of this job is cleared, so the next failure starts a new streak.
   */
  succeeded(job: Job): void;
}

/**
 * What follows an applied outcome, from the worker's events: a failed attempt notes when the job first
 * failed; a parked request (terminal, or out of attempts) notes its key; a later reconcile of that key
 * that succeeds — `done` or `requeueAfter`, see {@link OutcomeFollower.succeeded} — removes the parked
 * requests of the key; a retry that is not the last pulls a request that came in during the failed run
 * forward.
 *
 * The parked-keys set is a hint, not a ledger: a crash between parking and noting leaves the parked
 * request until the next resync's retryParked.
 */
export function followOutcomes(worker: Worker, d: OutcomeFollowerDeps): OutcomeFollower {
  const { connection, logger } = d;
  const noteFailure = (jobId: string | undefined) => {
    if (jobId === undefined) return;
    // Not a plain HSETNX: the retry may have completed, and the job been deleted, before this arrives.
    d.noteFirstFailure(jobId, Math.floor(d.clock.now())).catch((e: unknown) =>
      logger.debug({ jobId, err: errorMessage(e) }, 'could not note a first failure'),
    );
  };
  const noteParked = (jobId: string | undefined) => {
    if (jobId === undefined) return;
    connection
      .sadd(d.parkedKeys, jobIdKeyPart(jobId))
      .catch((e: unknown) => logger.warn({ jobId, err: errorMessage(e) }, 'could not note a parked key'));
  };
  const clearParked = async (keyPart: string, jobId: string): Promise<void> => {
    await connection.srem(d.parkedKeys, keyPart);
    for (const id of await scanJobIds(connection, d.failedKey, `${keyPart}~`)) {
      if (id === jobId) continue;
      const stale = await Job.fromId(worker, id);
      await stale?.remove();
      logger.info({ jobId: id, by: jobId }, 'parked request dropped: a later reconcile of its key succeeded');
    }
  };
  // Keys whose reconcile succeeded, waiting to be checked against the parked set: one SMISMEMBER for every key that
  // succeeded while the previous check was on its way, rather than a round trip per reconcile (B3 measured one
  // SISMEMBER per job, half of a drain's round trips, for a set that is nearly always empty).
  const toCheck = new Map<string, string>();
  let checking = false;
  const checkParked = async (): Promise<void> => {
    if (checking) return;
    checking = true;
    try {
      while (toCheck.size > 0) {
        const batch = [...toCheck];
        toCheck.clear();
        try {
          const parked = await connection.smismember(d.parkedKeys, ...batch.map(([keyPart]) => keyPart));
          for (const [i, [keyPart, jobId]] of batch.entries()) if (parked[i] === 1) await clearParked(keyPart, jobId);
        } catch (e: unknown) {
          logger.warn({ jobs: batch.length, err: errorMessage(e) }, 'could not drop parked requests');
        }
      }
    } finally {
      checking = false;
    }
  };

  worker.on('error', (error) => reportRedisError(connection, error, logger, 'worker error'));
  worker.on('failed', (job, error) => {
    if (job === undefined) return;
    noteFailure(job.id);
    if (error instanceof UnrecoverableError) {
      noteParked(job.id);
      return;
    }
    if (job.attemptsMade >= (job.opts.attempts ?? 1)) {
      logger.error({ jobId: job.id, attempts: job.attemptsMade, err: error.message }, 'request parked after its last attempt');
      noteParked(job.id);
      return;
    }
    // A retry moved the job to delayed for its backoff; a request that came in during the failed run must not wait for it.
    d.pullForwardIfDirty(job).catch((e: unknown) =>
      logger.warn({ jobId: job.id, err: errorMessage(e) }, 'could not pull a retried job forward'),
    );
  });
  return {
    succeeded(job) {
      const jobId = job.id;
      if (jobId === undefined) return;
      // Off the reconcile's path, as BullMQ's own events are: a lost clean-up leaves a stale entry until the next resync.
      if (job.attemptsMade > 0) {
        connection
          .hdel(d.jobKey(jobId), d.firstFailedField)
          .catch((e: unknown) => logger.debug({ jobId, err: errorMessage(e) }, 'could not clear a first-failure note'));
      }
      toCheck.set(jobIdKeyPart(jobId), jobId);
      void checkParked();
    },
  };
}
