// Holds the watch events that would enqueue until Redis says whether the controller's own workers caused them, in batches: own writes are dropped, everything else goes on.
//
// Expected flow: `submit` an event (its object's own-write id and resourceVersion, and what to do
// once decided) → on the next tick every submitted event is looked up in one round trip → own:
// settled as dropped; someone else's: settled as passed; in flight (a write of ours to that object
// has not been recorded yet, so this may be its event): asked again after 5, 10, 20 ... ms, and
// settled as passed once `maxHoldMs` has gone by without an answer.
//
// Guarantees: every submitted event is settled exactly once. Only a lookup that says "own" drops
// one; a failed lookup, a record that expired or an in-flight mark that never ends passes it — a
// missed suppression costs one reconcile, and nothing is ever lost. `drain()` resolves once every
// event submitted before the call is settled and the requests it made are in the queue, which is what
// lets the watch cursor advance past it.
import { type Clock, type Logger, type OwnWriteVerdict, systemClock } from '@conveyor/shared';
import type { EnqueueBuffer } from './enqueue-buffer.ts';

/** The part of OwnWriteLookup the filter uses; tests may pass a fake. */
export interface OwnWriteChecker {
  check(events: readonly { id: string; resourceVersion: string }[]): Promise<OwnWriteVerdict[]>;
}

export interface OwnWriteFilterOptions {
  lookup: OwnWriteChecker;
  buffer: EnqueueBuffer;
  logger: Logger;
  clock?: Clock;
  /** Longest an event waits for a write of ours in flight to be recorded. @defaultValue 2000 */
  maxHoldMs?: number;
  /** Events per lookup. @defaultValue 500 */
  batchSize?: number;
}

interface Held {
  seq: number;
  id: string;
  resourceVersion: string;
  settle: (own: boolean) => void;
  since: number;
  asked: number;
}

export class OwnWriteFilter {
  private readonly o: Required<Omit<OwnWriteFilterOptions, 'clock'>> & { clock: Clock };
  private queue: Held[] = [];
  private readonly unsettled = new Set<number>();
  private readonly waiters: { seq: number; resolve: () => void }[] = [];
  private submitted = 0;
  private flushing = false;
  private scheduled = false;
  private closed = false;
  private lastFailureLog = 0;

  constructor(options: OwnWriteFilterOptions) {
    this.o = { maxHoldMs: 2_000, batchSize: 500, clock: systemClock, ...options };
  }

  /** Events not settled yet. */
  get size(): number {
    return this.unsettled.size;
  }

  /** Decides one watch event; `settle(true)` means it was our own write and is dropped. */
  submit(id: string, resourceVersion: string, settle: (own: boolean) => void): void {
    const seq = ++this.submitted;
    this.unsettled.add(seq);
    this.queue.push({ seq, id, resourceVersion, settle, since: this.o.clock.now(), asked: 0 });
    this.schedule();
  }

  /** Resolves once every event submitted before this call is settled and its requests reached the queue. */
  async drain(): Promise<void> {
    const seq = this.submitted;
    if (!this.settledUpTo(seq)) await new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
    await this.o.buffer.drain();
  }

  /** Stops looking up; what is still held is passed on, so nothing waits on a filter that is gone. */
  close(): void {
    this.closed = true;
    const left = this.queue;
    this.queue = [];
    for (const held of left) this.settle(held, false);
  }

  private settledUpTo(seq: number): boolean {
    const first = this.unsettled.values().next();
    return first.done || first.value > seq;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.closed) return;
    this.scheduled = true;
    // One tick lets the events of one watch read gather into one lookup.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.splice(0, this.o.batchSize);
        let verdicts: OwnWriteVerdict[];
        try {
          verdicts = await this.o.lookup.check(batch.map((h) => ({ id: h.id, resourceVersion: h.resourceVersion })));
        } catch (error) {
          this.logFailure(error, batch.length);
          verdicts = batch.map(() => 'foreign');
        }
        for (const [i, held] of batch.entries()) this.decide(held, verdicts[i] ?? 'foreign');
      }
    } finally {
      this.flushing = false;
      if (this.queue.length > 0 && !this.closed) this.schedule();
    }
  }

  private decide(held: Held, verdict: OwnWriteVerdict): void {
    const waited = this.o.clock.now() - held.since;
    if (verdict !== 'in-flight' || waited >= this.o.maxHoldMs) {
      this.settle(held, verdict === 'own');
      return;
    }
    held.asked += 1;
    const delay = Math.min(5 * 2 ** (held.asked - 1), this.o.maxHoldMs - waited);
    this.o.clock.setTimeout(() => {
      if (this.closed) this.settle(held, false);
      else {
        this.queue.push(held);
        this.schedule();
      }
    }, delay);
  }

  private settle(held: Held, own: boolean): void {
    if (!this.unsettled.delete(held.seq)) return;
    try {
      held.settle(own);
    } catch (error) {
      this.o.logger.warn({ err: error }, 'settling a watch event failed');
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i] as { seq: number; resolve: () => void };
      if (this.settledUpTo(waiter.seq)) {
        this.waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  /** At most one warning per 10 s: a Redis outage would otherwise log one per batch. */
  private logFailure(error: unknown, events: number): void {
    const now = this.o.clock.now();
    if (now - this.lastFailureLog < 10_000) return;
    this.lastFailureLog = now;
    this.o.logger.warn({ err: error, events }, 'cannot look up own writes; enqueueing the events (a reconcile more, none lost)');
  }
}
