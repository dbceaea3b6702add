// Lanes with reserved capacity: how one worker's slots are shared by fresh events, manual requests and resync, so a resync backlog never holds the slots fresh work needs.
//
// # Why this design
// BullMQ's priorities only order the jobs that are ready: a worker fetches the lowest score of the
// `prioritized` set (`moveToActive` → ZPOPMIN) whenever it has a free slot, and nothing in open-source
// BullMQ 6.7.0 reserves slots (group concurrency is BullMQ Pro; the limiter is queue-wide; a Worker
// cannot fetch "only priorities ≤ 2"). So once a resync has filled every slot, a fresh event waits for
// one. Three ways out were weighed:
// - A gate in the processor alone (hand a resync job back when its lane is full) fights BullMQ's fetch
//   loop: the worker still has free slots, so it fetches the same resync job again at once, and spins.
// - A BullMQ queue per lane gives each lane its own fetch, but then one key can wait in both queues:
//   merging, dirty-while-running and one reconcile per key would need a cross-queue per-key lock
//   (two more Redis calls per reconcile, lock renewal, and a way to wake the deferred lane).
// - Chosen: ONE queue, so BullMQ's deduplication keeps every per-key promise as it is, and a resync
//   request that no worker has room for is not *ready*: it waits in a backlog (below) that BullMQ never
//   fetches from. Workers admit backlog jobs into the ready set only as their resync lane has room, and
//   a small gate hands back the rare resync job a worker fetched without room (see {@link LaneGate}).
//
// # The backlog
// A resync request is added as a delayed job due {@link RESYNC_BACKLOG_DELAY_MS} after it was made, so
// BullMQ's delayed set keeps the backlog in arrival order and no worker promotes it. Everything BullMQ
// does for a key keeps working on it: a fresh event or manual request for a key in the backlog merges
// into its job, and BullMQ's `reschedule` makes that job due now (ReconcileQueue then raises its
// priority): the key leaves the resync lane. Admission (`admitResync` in queue-scripts.ts) moves the
// oldest backlog jobs of the resync priority into `prioritized`, as BullMQ's own promotion of due
// delayed jobs does.
//
// # Cost
// Memory: none beyond today's — a backlog job is the job hash and one sorted-set entry it always was.
// Redis calls: one admission script per reconcile end while the backlog is not empty (none when it is),
// one per worker per second to notice a new backlog, and two (a move to delayed and the pull-forward
// check) for each resync job handed back.
import { DelayedError, type Job } from 'bullmq';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { BULLMQ_KEY, bullmqKey, delayedScore, jobKeyPrefix, prioritizedScore } from './bullmq-internals.ts';
import type { QueueScripts } from './queue-scripts.ts';
import type { QueueLocation } from './redis-keys.ts';
import { REASON_PRIORITY, type RequestReason } from './request-payload.ts';

/** The lanes a worker's slots are shared by; a job's lane is its BullMQ priority, not its payload's reason. */
export type Lane = RequestReason;

export const LANES: readonly Lane[] = ['event', 'manual', 'resync'];

/**
 * How long after its request a resync job in the backlog would fall due by itself: a year. Admission
 * takes it long before; the length only keeps it out of BullMQ's reach. BullMQ scores delayed jobs
 * `dueAt × 0x1000`, exact below 2^53, so due times stay exact until 2038.
 */
export const RESYNC_BACKLOG_DELAY_MS = 365 * 24 * 3_600_000;

/**
 * Delayed jobs due this far or further from now are backlog (half the backlog delay). A requeue-after
 * that long is never admitted: admission moves only jobs of the resync priority.
 */
export const RESYNC_BACKLOG_BAND_MS = RESYNC_BACKLOG_DELAY_MS / 2;

/** The lane of a fetched job: its priority as BullMQ holds it (a merged event raised it), else its name. */
export function laneOf(job: Pick<Job, 'priority' | 'name'>): Lane {
  const priority = Number(job.priority);
  if (priority >= REASON_PRIORITY.resync) return 'resync';
  if (priority === REASON_PRIORITY.manual) return 'manual';
  if (priority === REASON_PRIORITY.event) return 'event';
  return job.name === 'resync' ? 'resync' : job.name === 'manual' ? 'manual' : 'event';
}

/** The slots a resync may hold while other work runs: `share` of `concurrency`, at least one. */
export function resyncSlots(concurrency: number, share: number): number {
  return Math.min(concurrency, Math.max(1, Math.floor(concurrency * share)));
}

/**
 * One worker's slots by lane.
 *
 * # Expected flow
 * The processor calls {@link tryStart} with the lane of each job it is handed; on `true` it runs the
 * reconcile and calls {@link finish} after; on `false` it hands the job back to the backlog.
 *
 * # Guarantees
 * - While an event or manual reconcile runs in this worker, resync reconciles hold at most
 *   {@link resyncSlots} of its slots: the rest stay free for fresh work.
 * - Work-conserving: while nothing else runs here, a resync may start in every slot ("borrowing").
 *   A running reconcile is never interrupted, so a fresh event that arrives when a resync borrowed
 *   every slot waits for the first of them to end, no longer: it is ahead of every resync job.
 * - Event and manual jobs always start: the lanes never hold back fresh work, only resync.
 */
export class LaneGate {
  private readonly running: Record<Lane, number> = { event: 0, manual: 0, resync: 0 };
  private concurrency: number;
  private readonly share: number;

  constructor(concurrency: number, share: number) {
    if (!(share > 0 && share <= 1)) throw new RangeError(`the resync share must be in (0, 1], got ${share}`);
    this.concurrency = concurrency;
    this.share = share;
  }

  setConcurrency(concurrency: number): void {
    this.concurrency = concurrency;
  }

  /** Reconciles running now, by lane. */
  get runningByLane(): Readonly<Record<Lane, number>> {
    return this.running;
  }

  /** Takes a slot of `lane` when its share (or borrowing) allows; resolves whether it did. */
  tryStart(lane: Lane): boolean {
    if (lane === 'resync' && this.running.resync >= this.resyncCap() && this.othersRunning() > 0) return false;
    this.running[lane] += 1;
    return true;
  }

  finish(lane: Lane): void {
    this.running[lane] = Math.max(0, this.running[lane] - 1);
  }

  /**
   * How many more resync reconciles this worker could start: `whileOthersReady` if fresh work is
   * waiting in the queue (the share), `otherwise` if not (borrowing idle slots, when nothing else runs here).
   */
  resyncRoom(): { whileOthersReady: number; otherwise: number } {
    const capRoom = Math.max(0, this.resyncCap() - this.running.resync);
    const free = Math.max(0, this.concurrency - this.total());
    return { whileOthersReady: Math.min(capRoom, free), otherwise: this.othersRunning() > 0 ? Math.min(capRoom, free) : free };
  }

  private resyncCap(): number {
    return resyncSlots(this.concurrency, this.share);
  }

  private othersRunning(): number {
    return this.running.event + this.running.manual;
  }

  private total(): number {
    return this.running.event + this.running.manual + this.running.resync;
  }
}

/** What admission needs from the worker that runs it. */
export interface ResyncAdmissionDeps {
  scripts: QueueScripts;
  location: QueueLocation;
  gate: LaneGate;
  now(): number;
  logger: Logger;
  /** How often an idle worker looks for a new backlog. @defaultValue 1000 */
  intervalMs?: number;
}

export interface ResyncAdmission {
  /**
   * Admits as many backlog jobs as this worker's resync lane has room for (see `admitResync` in
   * queue-scripts.ts); `wake` sets BullMQ's ready marker when resync jobs are ready, for workers blocked
   * waiting for a job. Never rejects: a failure is logged and the next call or tick tries again.
   */
  admit(wake: boolean): Promise<void>;
  /** Whether the last look found a backlog (then every reconcile end admits). */
  readonly backlogSeen: boolean;
  stop(): void;
}

/** Starts a worker's admission of resync jobs: on every tick, and whenever its caller asks. */
export function startResyncAdmission(d: ResyncAdmissionDeps): ResyncAdmission {
  const keys = [
    bullmqKey(d.location, BULLMQ_KEY.delayed),
    bullmqKey(d.location, BULLMQ_KEY.prioritized),
    bullmqKey(d.location, BULLMQ_KEY.priorityCounter),
    bullmqKey(d.location, BULLMQ_KEY.marker),
    bullmqKey(d.location, BULLMQ_KEY.wait),
  ];
  let backlogSeen = true;
  let stopped = false;
  let inFlight: Promise<void> | undefined;
  const admit = (wake: boolean): Promise<void> => {
    // While Redis is away a call waits for the reconnect: later ticks join it instead of piling up.
    inFlight ??= admitOnce(wake).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
  const admitOnce = async (wake: boolean): Promise<void> => {
    if (stopped) return;
    const room = d.gate.resyncRoom();
    try {
      const [admitted, backlog] = await d.scripts.admitResync(keys, [
        jobKeyPrefix(d.location),
        String(delayedScore(Math.floor(d.now()) + RESYNC_BACKLOG_BAND_MS)),
        String(prioritizedScore(REASON_PRIORITY.resync, 0)),
        REASON_PRIORITY.resync,
        room.whileOthersReady,
        room.otherwise,
        wake ? 1 : 0,
      ]);
      backlogSeen = backlog > 0;
      if (admitted > 0) d.logger.debug({ admitted, backlog }, 'resync jobs admitted from the backlog');
    } catch (error) {
      d.logger.warn({ err: errorMessage(error) }, 'could not admit resync jobs; the next tick tries again');
    }
  };
  const timer = setInterval(() => void admit(true), d.intervalMs ?? 1_000);
  timer.unref();
  void admit(true);
  return {
    admit,
    get backlogSeen() {
      return backlogSeen;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/**
 * Hands a resync job this worker has no room for back to the backlog, with no attempt used, and ends
 * its processing (BullMQ's `DelayedError`). A request that came in for the key meanwhile makes it due
 * now instead (`pullForwardIfDirty`), as after a requeue-after.
 *
 * # Errors
 * A lost lock rejects the move, as in applyOutcome: the job stays with the worker that holds it.
 */
export async function handBackToBacklog(
  job: Job,
  token: string,
  now: () => number,
  pullForwardIfDirty: (job: Job) => Promise<void>,
): Promise<never> {
  await job.moveToDelayed(now() + RESYNC_BACKLOG_DELAY_MS, token);
  await pullForwardIfDirty(job);
  throw new DelayedError('resync lane full: the job is back in the resync backlog');
}
