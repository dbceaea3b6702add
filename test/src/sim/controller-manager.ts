// What kube-controller-manager does that controllers rely on: garbage collection and namespace deletion, run after the writes that call for them, never inside a request.
import { GarbageCollector } from './garbage-collector.ts';
import { NamespaceController } from './namespace-controller.ts';
import type { ObjectApi } from './objects.ts';
import { ApiError } from './status.ts';
import type { Store } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';

/** Where controllers put work: one task per key (a key already queued is not queued twice). */
export interface WorkQueue {
  enqueue(key: string, task: () => void): void;
}

const BATCH = 500;
const RETRY_MS = 100;
const MAX_ATTEMPTS = 8;

/**
 * Runs the garbage collector and the namespace controller on the simulator's store. Both observe every
 * change as it is committed and queue work; the queue is drained on the next turns of the event loop, so a
 * request is answered first and its consequences follow (a test waits for them, as against a real cluster).
 * A task that fails (a conflicting write) is retried a few times with a short delay.
 */
export class ControllerManager implements WorkQueue {
  private readonly queue = new Map<string, () => void>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private scheduled: NodeJS.Immediate | undefined;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(store: Store, types: TypeRegistry, objects: ObjectApi) {
    const gc = new GarbageCollector(store, types, objects, this);
    const namespaces = new NamespaceController(store, types, objects, this);
    this.unsubscribe = store.subscribeAll((event) => {
      gc.observe(event);
      namespaces.observe(event);
    });
  }

  enqueue(key: string, task: () => void): void {
    if (this.stopped || this.queue.has(key)) return;
    this.queue.set(key, task);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    for (const timer of this.timers) clearTimeout(timer);
    this.queue.clear();
  }

  private schedule(): void {
    if (this.scheduled !== undefined || this.stopped) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.drain();
    });
  }

  private drain(): void {
    let done = 0;
    for (const [key, task] of this.queue) {
      if (done++ >= BATCH || this.stopped) break;
      this.queue.delete(key);
      try {
        task();
        this.attempts.delete(key);
      } catch (error) {
        this.retry(key, task, error);
      }
    }
    if (this.queue.size > 0) this.schedule();
  }

  private retry(key: string, task: () => void, error: unknown): void {
    if (error instanceof ApiError && error.code === 404) return;
    if (!(error instanceof ApiError))
      process.emitWarning(`simulator controller task ${key} failed: ${(error as Error).stack ?? String(error)}`);
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    if (attempt >= MAX_ATTEMPTS) {
      this.attempts.delete(key);
      return;
    }
    this.attempts.set(key, attempt);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue(key, task);
    }, RETRY_MS * attempt);
    this.timers.add(timer);
  }
}
