// Collects the watcher's reconcile requests, merges repeats of a key, and sends them to the queue in batches, retrying until Redis takes them.
//
// Fresh requests go out ahead of resync ones (see takeBatch).
//
// Guarantees: a request added is sent, however long Redis is away (retries with capped backoff;
// nothing is dropped); `drain()` resolves once every request added before the call is in the
// queue, which is what lets the watch cursor advance safely. A key added again while it waits is
// sent once (the queue would merge it anyway), keeping the more urgent reason.
import { Backoff, type Clock, formatKey, type Logger, type ObjectKey, systemClock } from '@conveyor/shared';
import { type Span, SpanStatusCode } from '@opentelemetry/api';

export type RequestReason = 'event' | 'manual' | 'resync';

export interface WatcherRequest {
  key: ObjectKey;
  reason: RequestReason;
  /** When the watch event behind it arrived (ms since the epoch); a repeat of the key keeps the first one's. */
  eventAt?: number;
  /** W3C `traceparent` of the watch event's span. */
  trace?: string;
}

/** The part of the queue the buffer uses (ReconcileQueue provides it). */
export interface BatchSink {
  enqueueBatch(requests: readonly WatcherRequest[]): Promise<void>;
}

const URGENCY: Record<RequestReason, number> = { event: 0, manual: 1, resync: 2 };

/**
 * The span of one watch event (resource-stream.ts), ended once every request it caused has reached the
 * queue: its length is the time the event spent in the watcher. A request merged into one already
 * waiting here ends with that one, marked `conveyor.merged`: its reconcile is the other request's.
 */
export interface TracedEvent {
  span: Span;
  /** Requests of this event not yet in the queue. */
  pending: number;
}

interface Pending {
  request: WatcherRequest;
  seq: number;
  /** The traced events whose requests this entry carries (only while tracing is on). */
  events?: TracedEvent[];
}

function holdEvent(entry: Pending, event: TracedEvent | undefined): void {
  if (event === undefined) return;
  event.pending += 1;
  if (entry.events === undefined) entry.events = [event];
  else entry.events.push(event);
}

function releaseEvents(entry: Pending, failure?: string): void {
  for (const event of entry.events ?? []) {
    event.pending -= 1;
    if (failure !== undefined) event.span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
    if (event.pending === 0) event.span.end();
  }
}

export interface EnqueueBufferOptions {
  sink: BatchSink;
  logger: Logger;
  /** @defaultValue 1000 */
  batchSize?: number;
  /** Most resync requests in one batch (see takeBatch). @defaultValue 100 */
  resyncBatchSize?: number;
  /**
   * Past this many waiting requests `whenRoom` asks the watch to wait, so a Redis slower than a list
   * does not make the buffer grow with the list. @defaultValue 20000
   */
  maxPending?: number;
  /** @defaultValue 30000 */
  maxBackoffMs?: number;
  clock?: Clock;
  /** Called after each batch that reached the queue, with its requests. */
  onSent?: (requests: readonly WatcherRequest[]) => void;
  /** Called when a batch failed and will be retried. */
  onFailure?: (error: unknown) => void;
}

export class EnqueueBuffer {
  private pending = new Map<string, Pending>();
  private inFlight: Pending[] = [];
  private added = 0;
  private flushing = false;
  private scheduled = false;
  private closed = false;
  private readonly waiters: { seq: number; resolve: () => void }[] = [];
  private room: PromiseWithResolvers<void> | undefined;
  private readonly backoff: Backoff;
  private readonly stop = new AbortController();
  private readonly o: Required<Omit<EnqueueBufferOptions, 'onSent' | 'onFailure'>> & Pick<EnqueueBufferOptions, 'onSent' | 'onFailure'>;

  constructor(options: EnqueueBufferOptions) {
    this.o = { batchSize: 1000, resyncBatchSize: 100, maxPending: 20_000, maxBackoffMs: 30_000, clock: systemClock, ...options };
    this.backoff = new Backoff({ base: 100, max: this.o.maxBackoffMs });
  }

  /** Requests waiting to be sent (including a batch on its way). */
  get size(): number {
    return this.pending.size + this.inFlight.length;
  }

  /** Adds a request; `event` is the traced watch event behind it, whose span ends once its requests are in the queue. */
  add(request: WatcherRequest, event?: TracedEvent): void {
    const id = formatKey(request.key);
    const seq = ++this.added;
    const existing = this.pending.get(id);
    if (existing === undefined) {
      const entry: Pending = { request, seq };
      holdEvent(entry, event);
      this.pending.set(id, entry);
    } else {
      if (URGENCY[request.reason] < URGENCY[existing.request.reason]) existing.request = request;
      else event?.span.setAttribute('conveyor.merged', true);
      holdEvent(existing, event);
    }
    this.schedule();
  }

  /**
   * Undefined while there is room; past `maxPending` requests, a promise that resolves once sending
   * has brought them down to half of it (or the buffer closed). Adding never fails: this is advice
   * the watch follows between two lines.
   */
  whenRoom(): Promise<void> | undefined {
    if (this.size < this.o.maxPending || this.closed) return undefined;
    this.room ??= Promise.withResolvers<void>();
    return this.room.promise;
  }

  /** Resolves when everything added before this call has reached the queue. */
  drain(): Promise<void> {
    const seq = this.added;
    if (this.doneUpTo(seq)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  /** Stops retrying; requests not yet sent stay unsent (the cursor was not advanced past them). */
  close(): void {
    this.closed = true;
    this.stop.abort();
    for (const entry of [...this.inFlight, ...this.pending.values()]) releaseEvents(entry, 'not enqueued: the watcher stopped');
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
    this.release();
  }

  private doneUpTo(seq: number): boolean {
    const first = this.pending.values().next();
    if (!first.done && first.value.seq <= seq) return false;
    return !this.inFlight.some((p) => p.seq <= seq);
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.closed) return;
    this.scheduled = true;
    // One tick lets a burst of events (a list page) gather into one batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.size > 0 && !this.closed) {
        const batch = this.takeBatch();
        this.inFlight = batch;
        try {
          await this.o.sink.enqueueBatch(batch.map((p) => p.request));
          this.inFlight = [];
          this.backoff.reset();
          this.o.onSent?.(batch.map((p) => p.request));
          for (const entry of batch) releaseEvents(entry);
          this.release();
        } catch (error) {
          this.inFlight = [];
          // Put the batch back in front, keeping sequence order; a key re-added meanwhile keeps its older place.
          const merged = new Map<string, Pending>();
          for (const entry of batch) merged.set(formatKey(entry.request.key), entry);
          for (const [id, entry] of this.pending) {
            const earlier = merged.get(id);
            if (earlier === undefined) {
              merged.set(id, entry);
              continue;
            }
            if (URGENCY[entry.request.reason] < URGENCY[earlier.request.reason]) earlier.request = entry.request;
            if (entry.events !== undefined) earlier.events = [...(earlier.events ?? []), ...entry.events];
          }
          // Sequence order again (fresh requests may have gone out ahead of older resync ones): drain() reads the first.
          this.pending = new Map([...merged].sort((a, b) => a[1].seq - b[1].seq));
          const delay = this.backoff.next();
          this.o.logger.warn({ err: error, waiting: this.pending.size, retryInMs: delay }, 'enqueue failed; retrying');
          this.o.onFailure?.(error);
          await this.o.clock.sleep(delay, this.stop.signal);
        }
      }
    } finally {
      this.flushing = false;
      this.release();
      if (this.pending.size > 0 && !this.closed) this.schedule();
    }
  }

  /**
   * The next batch: fresh and manual requests first, then resync ones, at most `resyncBatchSize` of
   * those. One batch is in flight at a time, so a large resync batch would hold back every event that
   * arrives while it is sent; this way an event waits for at most that many resync requests.
   */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    for (const [id, entry] of this.pending) {
      if (entry.request.reason === 'resync') continue;
      batch.push(entry);
      this.pending.delete(id);
      if (batch.length >= this.o.batchSize) return batch;
    }
    if (batch.length > 0) return batch;
    for (const [id, entry] of this.pending) {
      batch.push(entry);
      this.pending.delete(id);
      if (batch.length >= Math.min(this.o.batchSize, this.o.resyncBatchSize)) break;
    }
    return batch;
  }

  private release(): void {
    if (this.room !== undefined && (this.size <= this.o.maxPending / 2 || this.closed)) {
      this.room.resolve();
      this.room = undefined;
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i] as { seq: number; resolve: () => void };
      if (this.doneUpTo(waiter.seq)) {
        this.waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }
}
