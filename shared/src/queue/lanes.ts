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
//   a small gate holds (or, past two, hands back) the rare resync job a worker fetched without room (see
//   {@link LaneGate}).
//
// # Admission's count
// A worker admits at every reconcile end, counting its lane's room as its share minus the resync
// reconciles it runs or holds, minus the resync jobs ready in Redis or admitted by it and still on
// their way (BullMQ moved them to active for a free slot; they have not reached the processor). Without
// that last term a drain beside 200 events/s over-admitted, and a third of a 5,000-key resync was fetched,
// handed back and fetched again; each costs a move to delayed, a pull-forward check, a re-admission and a
// second fetch: per job of that drain, worker CPU 336 µs instead of 423 and Redis CPU 237 µs instead of 308
// once the count was right (a drain of 5,000 resync keys beside 200 events/s, one worker at concurrency 20).
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
// check) for each resync job handed back, which the count above and holding make rare.
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
 * How long after a fresh (event or manual) reconcile started this worker still counts fresh work as
 * flowing, and keeps a resync to its share. Fresh events come in ones and twos between gaps: judged by
 * "one runs right now", the lane flipped between share and borrowing many times a second, admission
 * admitted for every slot while none ran, and the worker fetched resync jobs it then had to hand back.
 */
export const FRESH_WORK_WINDOW_MS = 1_000;

/**
 * How many resync jobs a worker keeps waiting for its resync lane instead of handing them back. Admission
 * counts the lane's room when a reconcile ends, but a job BullMQ has just moved to active for this
 * worker and not yet handed to the processor is neither ready nor running, so admission sometimes admits
 * one or two too many. Handing each back costs a move to delayed, a pull-forward check, a re-admission
 * and a second fetch: with 200 events/s flowing, a 5,000-key resync was handed back a third of the time,
 * at about 1.3 times the worker and Redis CPU per job of a drain with none. A held job waits in
 * the worker for the lane's next slot, and the worker asks BullMQ for one more job meanwhile, so the
 * slots fresh work needs stay free.
 */
export const RESYNC_HOLD_MAX = 2;

/**
 * How long a resync job this worker admitted counts as on its way to it. BullMQ moves an admitted job to
 * active for one of the worker's free slots at once, and it reaches the processor a round trip or an
 * event-loop turn later; until then it is neither ready nor running, and admission, run at every
 * reconcile end, would count its place as free again. A job not seen by then went to another worker.
 */
export const ADMITTED_IN_TRANSIT_MS = 250;

/**
 * One worker's slots by lane.
 *
 * # Expected flow
 * The processor calls {@link tryStart} with the lane of each job it is handed; on `true` it runs the
 * reconcile and calls {@link finish} after. On `false` (a resync job with no room) it calls {@link hold}:
 * resolved `true`, the job has taken a slot of its lane and runs; `false` or no promise, it hands the job
 * back to the backlog.
 *
 * # Guarantees
 * - While fresh work flows in this worker (an event or manual reconcile runs, or started within
 *   {@link FRESH_WORK_WINDOW_MS}), resync reconciles hold at most {@link resyncSlots} of its slots: the
 *   rest stay free for fresh work.
 * - Work-conserving: once no fresh work has started for that long, a resync may start in every slot
 *   ("borrowing"). A running reconcile is never interrupted, so a fresh event that arrives when a resync
 *   borrowed every slot waits for the first of them to end, no longer: it is ahead of every resync job.
 * - Event and manual jobs always start: the lanes never hold back fresh work, only resync.
 * - At most {@link RESYNC_HOLD_MAX} resync jobs wait in the worker, and while they do the worker's
 *   BullMQ concurrency is raised by as many ({@link onHeldChange}): a held job never takes a slot.
 */
export class LaneGate {
  private readonly running: Record<Lane, number> = { event: 0, manual: 0, resync: 0 };
  private concurrency: number;
  private readonly share: number;
  private readonly now: () => number;
  private lastFreshStart = Number.NEGATIVE_INFINITY;
  private readonly held: ((start: boolean) => void)[] = [];
  /** When each resync job this worker admitted and has not been handed yet was admitted, oldest first. */
  private readonly admitted: number[] = [];
  private heldTimer: ReturnType<typeof setTimeout> | undefined;
  /** Told how many resync jobs wait in the worker, whenever that changes. */
  onHeldChange: (held: number) => void = () => {};

  /** `now` is the worker's clock (ms); fresh work counts as flowing for {@link FRESH_WORK_WINDOW_MS} after it started. */
  constructor(concurrency: number, share: number, now: () => number = () => performance.now()) {
    if (!(share > 0 && share <= 1)) throw new RangeError(`the resync share must be in (0, 1], got ${share}`);
    this.concurrency = concurrency;
    this.share = share;
    this.now = now;
  }

  setConcurrency(concurrency: number): void {
    this.concurrency = concurrency;
    this.startHeld();
  }

  /** The worker's slots (its concurrency, not counting the fetches held jobs add). */
  get slots(): number {
    return this.concurrency;
  }

  /** Reconciles running now, by lane. */
  get runningByLane(): Readonly<Record<Lane, number>> {
    return this.running;
  }

  /** Resync jobs waiting in the worker for a slot of their lane. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Takes a slot of `lane` when its share (or borrowing) allows; resolves whether it did. */
  tryStart(lane: Lane): boolean {
    if (lane === 'resync') {
      this.admitted.shift(); // it has arrived, whether it starts or not
      if (!this.resyncMayStart()) return false;
    } else {
      this.lastFreshStart = this.now();
    }
    this.running[lane] += 1;
    return true;
  }

  /**
   * Keeps a resync job that {@link tryStart} refused until its lane has a slot: resolves `true` once it
   * has taken one, `false` if it must go back to the backlog after all (the worker closes). Undefined
   * when {@link RESYNC_HOLD_MAX} jobs are held already: hand it back now.
   */
  hold(): Promise<boolean> | undefined {
    if (this.held.length >= RESYNC_HOLD_MAX) return undefined;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.held.push(resolve);
    this.onHeldChange(this.held.length);
    this.watchHeld();
    return promise;
  }

  /** Fresh work may stop flowing while a long reconcile runs and none ends: look again each window while jobs are held. */
  private watchHeld(): void {
    if (this.heldTimer !== undefined || this.held.length === 0) return;
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined;
      this.startHeld();
      this.watchHeld();
    }, FRESH_WORK_WINDOW_MS);
    this.heldTimer.unref?.();
  }

  finish(lane: Lane): void {
    this.running[lane] = Math.max(0, this.running[lane] - 1);
    this.startHeld();
  }

  /** Admission made `count` resync jobs ready for this worker. */
  noteAdmitted(count: number): void {
    const at = this.now();
    for (let i = 0; i < count; i++) this.admitted.push(at);
  }

  /** Resync jobs admitted for this worker within {@link ADMITTED_IN_TRANSIT_MS} that it has not been handed yet. */
  admittedInTransit(): number {
    const since = this.now() - ADMITTED_IN_TRANSIT_MS;
    while (this.admitted.length > 0 && (this.admitted[0] as number) < since) this.admitted.shift();
    return this.admitted.length;
  }

  /** Sends every held job back (the worker is closing). */
  releaseHeld(): void {
    const held = this.held.splice(0);
    for (const resolve of held) resolve(false);
    if (held.length > 0) this.onHeldChange(0);
  }

  /**
   * How many more resync jobs admission should make ready for this worker: `whileOthersReady` if fresh
   * work is waiting in the queue (the share), `otherwise` if not (borrowing idle slots, once fresh work
   * stopped flowing here). Held jobs count as started.
   */
  resyncRoom(): { whileOthersReady: number; otherwise: number } {
    const capRoom = Math.max(0, this.resyncCap() - this.running.resync - this.held.length);
    const free = Math.max(0, this.concurrency - this.total() - this.held.length);
    return { whileOthersReady: Math.min(capRoom, free), otherwise: this.freshFlowing() ? Math.min(capRoom, free) : free };
  }

  private startHeld(): void {
    let started = false;
    while (this.held.length > 0 && this.resyncMayStart() && this.total() < this.concurrency) {
      this.running.resync += 1;
      (this.held.shift() as (start: boolean) => void)(true);
      started = true;
    }
    if (started) this.onHeldChange(this.held.length);
    if (this.held.length === 0 && this.heldTimer !== undefined) {
      clearTimeout(this.heldTimer);
      this.heldTimer = undefined;
    }
  }

  private resyncMayStart(): boolean {
    return this.running.resync < this.resyncCap() || !this.freshFlowing();
  }

  /** Fresh work runs here, or started within {@link FRESH_WORK_WINDOW_MS}. */
  private freshFlowing(): boolean {
    return this.othersRunning() > 0 || this.now() - this.lastFreshStart < FRESH_WORK_WINDOW_MS;
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
        d.gate.admittedInTransit(),
      ]);
      d.gate.noteAdmitted(admitted);
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
 * Hands a resync job this worker has no room for back to the backlog, with no attempt used and no run
 * counted (`unstart`), and ends its processing (BullMQ's `DelayedError`). A request that came in for the
 * key meanwhile makes it due now instead (`pullForwardIfDirty`), as after a requeue-after.
 *
 * # Errors
 * A lost lock rejects the move, as in applyOutcome: the job stays with the worker that holds it.
 */
export async function handBackToBacklog(
  job: Job,
  token: string,
  now: () => number,
  pullForwardIfDirty: (job: Job) => Promise<void>,
  unstart: (job: Job, token: string) => Promise<void>,
): Promise<never> {
  await unstart(job, token);
  await job.moveToDelayed(now() + RESYNC_BACKLOG_DELAY_MS, token);
  await pullForwardIfDirty(job);
  throw new DelayedError('resync lane full: the job is back in the resync backlog');
}
