// In-memory object storage: one frozen copy per object, a sorted key index per resource, one global resourceVersion, and a bounded event history.
import type { JsonObject } from './status.ts';

export type StoredObject = Readonly<JsonObject>;
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  storageKey: string;
  object: StoredObject;
  /** The object before this change (MODIFIED, DELETED), so selector-filtered watches can tell entering from leaving. */
  previous: StoredObject | undefined;
  at: number;
}

/** Deep-freezes a freshly built object so the one stored copy can be shared by lists, watches and history. */
export function freeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) freeze(child);
    Object.freeze(value);
  }
  return value;
}

export function objectKey(namespace: string, name: string): string {
  return namespace === '' ? name : `${namespace}/${name}`;
}

/** First index in a sorted array whose value is >= (or > when `after`) the probe. */
function bound(sorted: readonly string[], probe: string, after: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid] as string;
    if (v < probe || (after && v === probe)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The objects of one resource (all versions of it), keyed `namespace/name` and ordered as etcd orders them. */
export class Bucket {
  private readonly objects = new Map<string, StoredObject>();
  private readonly keys: string[] = [];

  get size(): number {
    return this.objects.size;
  }

  get(key: string): StoredObject | undefined {
    return this.objects.get(key);
  }

  put(key: string, object: StoredObject): void {
    if (!this.objects.has(key)) this.keys.splice(bound(this.keys, key, false), 0, key);
    this.objects.set(key, object);
  }

  remove(key: string): void {
    if (!this.objects.delete(key)) return;
    const index = bound(this.keys, key, false);
    if (this.keys[index] === key) this.keys.splice(index, 1);
  }

  /** Keys in order, starting after `after` (exclusive) and within `prefix` (a namespace's `ns/`). */
  *scan(prefix: string, after: string | undefined): Generator<[string, StoredObject]> {
    const start = after !== undefined && after >= prefix ? bound(this.keys, after, true) : bound(this.keys, prefix, false);
    for (let i = start; i < this.keys.length; i++) {
      const key = this.keys[i] as string;
      if (!key.startsWith(prefix)) return;
      yield [key, this.objects.get(key) as StoredObject];
    }
  }

  /** How many keys come after `after` within `prefix`: the list's `remainingItemCount`. */
  countAfter(prefix: string, after: string): number {
    const start = bound(this.keys, after, true);
    const end = prefix === '' ? this.keys.length : bound(this.keys, `${prefix}\uffff`, false);
    return Math.max(0, end - start);
  }
}

export type StoreListener = (event: StoreEvent) => void;

export interface StoreOptions {
  now: () => number;
  /** How long events stay replayable for watches, in milliseconds. */
  historyWindowMs: number;
  /** An upper bound on retained events, whatever their age. */
  historyLimit: number;
}

/** Every bucket, the global resourceVersion counter, the event history and the listeners of each resource. */
export class Store {
  private readonly buckets = new Map<string, Bucket>();
  private readonly listeners = new Map<string, Set<StoreListener>>();
  /** Listeners of every resource (the simulator's controllers). */
  private readonly everything = new Set<StoreListener>();
  private readonly history: StoreEvent[] = [];
  private historyHead = 0;
  private revision: number;
  /** Events with rv <= this are no longer in the history: a watch from before it gets 410. */
  private compacted: number;
  private readonly options: StoreOptions;

  constructor(options: StoreOptions, startRevision = 1000) {
    this.options = options;
    this.revision = startRevision;
    this.compacted = startRevision;
  }

  get currentRevision(): number {
    return this.revision;
  }

  get compactedRevision(): number {
    this.trim();
    return this.compacted;
  }

  bucket(storageKey: string): Bucket {
    let bucket = this.buckets.get(storageKey);
    if (bucket === undefined) {
      bucket = new Bucket();
      this.buckets.set(storageKey, bucket);
    }
    return bucket;
  }

  objectCount(): number {
    let n = 0;
    for (const bucket of this.buckets.values()) n += bucket.size;
    return n;
  }

  dropBucket(storageKey: string): void {
    this.buckets.delete(storageKey);
  }

  /** Takes the next resourceVersion; the caller writes it into the object before `commit`. */
  nextRevision(): number {
    this.revision += 1;
    return this.revision;
  }

  /** Stores (or removes, for DELETED) the object and tells every listener of its resource. */
  commit(storageKey: string, key: string, type: EventType, object: StoredObject, previous: StoredObject | undefined, rv: number): void {
    const bucket = this.bucket(storageKey);
    if (type === 'DELETED') bucket.remove(key);
    else bucket.put(key, object);
    const event: StoreEvent = { rv, type, storageKey, object, previous, at: this.options.now() };
    this.history.push(event);
    this.trim();
    for (const listener of this.listeners.get(storageKey) ?? []) listener(event);
    for (const listener of this.everything) listener(event);
  }

  /** Events of one resource with rv > `from`, or undefined when the history no longer reaches back that far. */
  eventsSince(storageKey: string, from: number): StoreEvent[] | undefined {
    this.trim();
    if (from < this.compacted) return undefined;
    let lo = this.historyHead;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.history[mid] as StoreEvent).rv <= from) lo = mid + 1;
      else hi = mid;
    }
    const out: StoreEvent[] = [];
    for (let i = lo; i < this.history.length; i++) {
      const event = this.history[i] as StoreEvent;
      if (event.storageKey === storageKey) out.push(event);
    }
    return out;
  }

  subscribe(storageKey: string, listener: StoreListener): () => void {
    let set = this.listeners.get(storageKey);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(storageKey, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Tells `listener` about every change of every resource, after the watches of that resource. */
  subscribeAll(listener: StoreListener): () => void {
    this.everything.add(listener);
    return () => this.everything.delete(listener);
  }

  /** Forgets every event so far, as an etcd compaction does: watches from any earlier resourceVersion get 410. */
  compactAll(): void {
    this.history.length = 0;
    this.historyHead = 0;
    this.compacted = this.revision;
  }

  private trim(): void {
    const cutoff = this.options.now() - this.options.historyWindowMs;
    while (this.historyHead < this.history.length) {
      const event = this.history[this.historyHead] as StoreEvent;
      if (event.at >= cutoff && this.history.length - this.historyHead <= this.options.historyLimit) break;
      this.compacted = event.rv;
      this.history[this.historyHead] = undefined as unknown as StoreEvent;
      this.historyHead += 1;
    }
    if (this.historyHead > 1024 && this.historyHead * 2 > this.history.length) {
      this.history.splice(0, this.historyHead);
      this.historyHead = 0;
    }
  }
}
