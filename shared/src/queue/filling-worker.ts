// A BullMQ Worker that fills its empty slots with one batch of fetches instead of one fetch per round trip.
//
// # Why
// BullMQ's main loop fetches a job for each free slot one after another, awaiting each fetch
// (`moveToActive`) before the next, and starts none of them until every slot has its job. A worker with
// 100 slots that starts on a backlog, or wakes from idle into a burst, so waits 100 round trips before
// its first reconcile: B3 measured about 34 ms of its 46 ms from start to first reconcile there (a
// round trip is about 0.3 ms on a loaded 2-core machine), the same again at every idle → burst edge
// (B7). Once slots are busy this does not matter: a finishing job fetches the next in the same script.
//
// # How
// `moveToActive` is BullMQ's protected extension point for the fetch. When nothing runs in this worker
// (every slot is empty), the first fetch also asks how many jobs are ready (`wait` + `prioritized`, the
// sets `moveToActive` takes from; the resync backlog is delayed, not counted), and then sends that many
// more fetches at once, up to the free slots. Redis runs them back to back; each is BullMQ's own
// `moveToActive` with a lock token of its own, handled as BullMQ handles it (delays, `drained`,
// `active`), and handed to the main loop as its next fetches ask, in order. So each job is fetched,
// locked and processed exactly as before, only sooner.
//
// # Guarantees
// A fetched job this worker does not start is never left holding its lock: the main loop asks for the
// batch within the same turn of the event loop (its fetches await nothing else), and a job still
// unclaimed one turn after the batch arrived (the loop stopped early: a pause, a close, a rate limit)
// goes back to the queue at the head of its priority (`moveToWait`, what BullMQ itself does with a job
// caught by a rate limit), with the start BullMQ counted for the fetch taken back and the ready marker
// set so that a blocked worker takes it at once; a closing worker does that before its close resolves.
// A batch is sized by the jobs ready when asked (never more), so an idle worker woken for one request
// sends one fetch (and the count) as before, not one per slot.
import { type Job, type Processor, Worker, type WorkerOptions } from 'bullmq';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { BULLMQ_KEY, bullmqKey, READY_MARKER_MEMBER } from './bullmq-internals.ts';
import type { RedisConnection } from './redis-connection.ts';
import type { QueueLocation } from './redis-keys.ts';

export interface FillingWorkerDeps {
  connection: RedisConnection;
  location: QueueLocation;
  logger: Logger;
  /** Takes back the start BullMQ counted for a job handed back unstarted (`unstarter` in queue-scripts.ts). */
  unstart(job: Job, token: string): Promise<void>;
}

export class FillingWorker extends Worker {
  /** Fetches of the current batch the main loop has not asked for yet, in the order Redis ran them. */
  private readonly unclaimed: Promise<Job | undefined>[] = [];
  /** processJob calls under way: a slot that is not empty. */
  private processing = 0;
  private batches = 0;
  /** Batches whose unclaimed jobs are not yet back in the queue. */
  private readonly settling = new Set<Promise<void>>();
  private readonly fill: FillingWorkerDeps & { waitKey: string; prioritizedKey: string; markerKey: string };

  constructor(name: string, processor: Processor, opts: WorkerOptions, deps: FillingWorkerDeps) {
    super(name, processor, opts);
    this.fill = {
      ...deps,
      waitKey: bullmqKey(deps.location, BULLMQ_KEY.wait),
      prioritizedKey: bullmqKey(deps.location, BULLMQ_KEY.prioritized),
      markerKey: bullmqKey(deps.location, BULLMQ_KEY.marker),
    };
  }

  override async processJob(job: Job, token: string, fetchNextCallback?: () => boolean): ReturnType<Worker['processJob']> {
    this.processing += 1;
    try {
      return await super.processJob(job, token, fetchNextCallback);
    } finally {
      this.processing -= 1;
    }
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    const next = this.unclaimed.shift();
    // BullMQ types the fetch as Promise<Job> but resolves undefined when nothing is ready; so do we.
    if (next !== undefined) return (await next) as Job;
    const free = this.concurrency - 1;
    if (this.processing > 0 || free < 1) return super.moveToActive(token, name);
    const first = super.moveToActive(token, name);
    // Sent right behind the fetch, so Redis counts what is left after it.
    const ready = this.countReady();
    const job = await first;
    // The count may have run before the first fetch (BullMQ sends it a turn later): counting that job again would
    // fetch one too many, and an empty fetch marks the worker drained, so the loop would block instead of asking.
    const more = Math.min(free, (await ready) - 1);
    if (job !== undefined && more > 0 && this.processing === 0) this.fetchBatch(token, more, name);
    return job;
  }

  private async countReady(): Promise<number> {
    try {
      const [waiting, prioritized] = await Promise.all([
        this.fill.connection.llen(this.fill.waitKey),
        this.fill.connection.zcard(this.fill.prioritizedKey),
      ]);
      return waiting + prioritized;
    } catch (error) {
      // Without the count, fetch one at a time as BullMQ does.
      this.fill.logger.debug({ err: errorMessage(error) }, 'could not count ready jobs; fetching one at a time');
      return 0;
    }
  }

  private fetchBatch(token: string, count: number, name: string | undefined): void {
    this.batches += 1;
    const batch = this.batches;
    const fetches = Array.from({ length: count }, (_, i) =>
      super.moveToActive(`${token}:b${batch}.${i}`, name).catch((error: unknown) => {
        this.fill.logger.debug({ err: errorMessage(error) }, 'a batched fetch failed; the main loop fetches again');
        return undefined;
      }),
    );
    this.unclaimed.push(...fetches);
    // One turn after the last fetch answered, whatever the main loop did not claim goes back to the queue.
    const settled = Promise.allSettled(fetches)
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.returnUnclaimed(fetches));
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  /** Closes as BullMQ does, then waits for unclaimed jobs to be back in the queue while the connection is still open. */
  override async close(force?: boolean): Promise<void> {
    await super.close(force);
    await Promise.all(this.settling);
  }

  private async returnUnclaimed(fetches: Promise<Job | undefined>[]): Promise<void> {
    const left = this.unclaimed.filter((fetch) => fetches.includes(fetch));
    if (left.length === 0) return;
    this.unclaimed.splice(0, this.unclaimed.length, ...this.unclaimed.filter((fetch) => !left.includes(fetch)));
    const returned = await Promise.all(
      left.map(async (fetch) => {
        const job = await fetch;
        if (job?.token === undefined) return;
        try {
          // Its next run is its first (RequestContext.runs): this fetch did not start it.
          await this.fill.unstart(job, job.token);
          await job.moveToWait(job.token);
          this.fill.logger.debug({ jobId: job.id }, 'a batch-fetched job the worker did not start went back to the queue');
          return true;
        } catch (error) {
          // Its lock then expires and the stalled check puts it back (lockDuration + stalledInterval).
          this.fill.logger.warn({ jobId: job.id, err: errorMessage(error) }, 'could not return an unstarted job to the queue');
          return false;
        }
      }),
    );
    // BullMQ puts a prioritized job back without the ready marker, so a worker blocked waiting for one (this one, once
    // its loop found nothing) would sleep until its drainDelay: wake it.
    if (returned.includes(true)) {
      await this.fill.connection
        .zadd(this.fill.markerKey, 0, READY_MARKER_MEMBER)
        .catch((error: unknown) => this.fill.logger.debug({ err: errorMessage(error) }, 'could not wake workers for returned jobs'));
    }
  }
}
