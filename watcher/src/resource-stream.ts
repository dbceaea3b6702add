// Turns the list and watch events of one resource into decisions and reconcile requests: the controller's own objects, owned children, or mapped objects.
import {
  ATTR,
  formatKey,
  type KubeObject,
  keyOf,
  type Logger,
  ownWriteId,
  type ResourceSpec,
  SPAN,
  type TargetRef,
  traceparentOf,
  tracer,
  type WatchSpec,
} from '@conveyor/shared';
import { hashValue } from '@conveyor/shared/fnv';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import type { EnqueueBuffer, TracedEvent } from './enqueue-buffer.ts';
import type { ListReason, ListWatchHandler, RestartReason, WatchEventType } from './list-watch.ts';
import { ObjectTable, parseResourceVersion } from './object-table.ts';
import type { OwnWriteFilter } from './own-write-filter.ts';
import { type CompiledPredicates, DROP_REASONS, decide, digestMeta, type EventType, storeDigest } from './predicates.ts';
import { inShard, type Shard } from './sharding.ts';
import { controllerOwner, type IndexedTargets, indexedTargets, mappedTargets, type SelfIndex } from './triggers.ts';
import type { MetricEventType, WatcherMetrics } from './watcher-metrics.ts';

export type StreamRole =
  | { kind: 'self' }
  | { kind: 'owned'; parent: ResourceSpec & { kind: string } }
  | { kind: 'watched'; watch: WatchSpec; indexed?: IndexedTargets };

/** Reasons only some streams use, beyond the predicates' own. */
export const EXTRA_PASS_REASONS = ['vanished', 'requeue-all', 'changed'] as const;
/**
 * `own-write`: the event of a write this controller's workers made. `owner-gone`: a child whose owner
 * the controller's own stream does not hold (deleted, or outside its selector or shard).
 */
export const EXTRA_DROP_REASONS = ['unowned', 'map-error', 'own-write', 'owner-gone'] as const;

export interface ResourceStreamOptions {
  /** The metric label and cursor field of this stream, such as `widgets.example.com`. */
  name: string;
  role: StreamRole;
  /** The resource this stream watches. */
  resource: ResourceSpec;
  /** The controller's own resource: every request is a key of it. */
  target: ResourceSpec;
  predicates: CompiledPredicates;
  shard: () => Shard | undefined;
  buffer: EnqueueBuffer;
  metrics: WatcherMetrics;
  logger: Logger;
  /** The watcher's clock: when an event arrived. */
  now: () => number;
  /** Called after each completed list, once its requests are in the queue. */
  onSynced?: () => void;
  /** Decides which watch events are the controller's own writes; without it, none are. */
  ownWrites?: OwnWriteFilter | undefined;
  /** The controller's own stream: the indexes of `watches` entries that map through its objects. */
  indexes?: readonly SelfIndex[];
  /**
   * Owned streams: whether an event of a child should still reconcile this owner — false when the
   * controller's own stream does not hold it, or when a child goes away while it is being finalized
   * (`deletedChild`); undefined while it cannot tell (not synced yet), which counts as yes.
   */
  ownerWanted?: (owner: TargetRef, deletedChild: boolean) => boolean | undefined;
}

export class ResourceStream implements ListWatchHandler {
  readonly name: string;
  readonly table: ObjectTable;
  private readonly o: ResourceStreamOptions;
  private listing = false;
  private firstList = true;
  private everSynced = false;
  private enqueueAllNextList = false;
  private enqueueAllNow = false;
  /** resourceVersion up to which a previous run enqueued everything (from the cursor), for the first list. */
  private since: number | undefined;

  constructor(options: ResourceStreamOptions) {
    this.o = options;
    this.name = options.name;
    this.table = new ObjectTable({
      extraColumns: options.predicates.projections.length,
      tags: options.role.kind === 'owned',
    });
    const passReasons = [...new Set([...options.predicates.passReasons, ...EXTRA_PASS_REASONS])];
    options.metrics.initResource(this.name, passReasons, [...DROP_REASONS, ...EXTRA_DROP_REASONS]);
  }

  /** True once a first list has been processed and its requests reached the queue. */
  get synced(): boolean {
    return this.everSynced;
  }

  /** Before the first list: objects whose resourceVersion is at or below this were enqueued by a previous run. */
  resumeFrom(resourceVersion: string | undefined): void {
    const rv = parseResourceVersion(resourceVersion);
    this.since = Number.isNaN(rv) ? undefined : rv;
  }

  /** The next list enqueues every object, whatever changed (the queue lost its contents). */
  enqueueAllOnNextList(): void {
    this.enqueueAllNextList = true;
  }

  beginList(reason: ListReason): void {
    this.listing = true;
    this.enqueueAllNow = this.enqueueAllNextList;
    this.table.clearSeen();
    this.o.metrics.relists.inc({ resource: this.name, reason });
    this.o.logger.info({ reason }, 'listing');
  }

  listItem(object: KubeObject): void {
    this.process('LISTED', object);
  }

  async endList(resourceVersion: string): Promise<void> {
    for (const key of this.table.unseenKeys()) this.vanished(key);
    this.listing = false;
    this.firstList = false;
    if (this.enqueueAllNow) this.enqueueAllNextList = false;
    this.enqueueAllNow = false;
    this.o.metrics.tracked.set({ resource: this.name }, this.table.size);
    await (this.o.ownWrites ?? this.o.buffer).drain();
    this.everSynced = true;
    this.o.metrics.synced.set({ resource: this.name }, 1);
    this.o.logger.info({ resourceVersion, tracked: this.table.size }, 'list synced');
    this.o.onSynced?.();
  }

  event(type: WatchEventType, object: KubeObject): void {
    this.process(type, object);
  }

  bookmark(): void {}

  malformed(line: string): void {
    this.o.metrics.events.inc({ resource: this.name, type: 'MALFORMED', decision: 'drop', reason: 'malformed' });
    this.o.logger.warn({ line: line.slice(0, 200) }, 'malformed watch line skipped');
  }

  restarted(reason: RestartReason): void {
    this.o.metrics.restarts.inc({ resource: this.name, reason });
  }

  /** Keys of the controller's resource this stream tracks (self streams only), for resync. */
  *targetKeys(): Generator<TargetRef> {
    if (this.o.role.kind !== 'self') return;
    for (const key of this.table.keys()) {
      const slash = key.indexOf('/');
      yield { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    }
  }

  private count(type: MetricEventType, pass: boolean, reason: string): void {
    this.o.metrics.events.inc({ resource: this.name, type, decision: pass ? 'pass' : 'drop', reason });
  }

  /**
   * Enqueues the requests an event caused, from the time it arrived. The event gets a `conveyor.watch.event`
   * span (a trace's root) whose context each request carries; it ends once they are in the queue.
   */
  private enqueue(targets: readonly TargetRef[], cause: { type: string; reason: string; at: number }): void {
    const shard = this.o.shard();
    const attributes = { [ATTR.resource]: this.name, [ATTR.eventType]: cause.type, [ATTR.decision]: cause.reason };
    const span = tracer().startSpan(SPAN.watchEvent, { kind: SpanKind.PRODUCER, startTime: cause.at, attributes }, ROOT_CONTEXT);
    const trace = traceparentOf(span);
    const event: TracedEvent | undefined = trace === undefined ? undefined : { span, pending: 0 };
    for (const t of targets) {
      const namespace = t.namespace ?? '';
      if (!inShard(shard, namespace, t.name)) continue;
      try {
        const key = keyOf(this.o.target, { namespace, name: t.name });
        if (event !== undefined && targets.length === 1) span.setAttribute(ATTR.key, formatKey(key));
        this.o.buffer.add({ key, reason: 'event', eventAt: cause.at, ...(trace === undefined ? {} : { trace }) }, event);
      } catch (error) {
        this.o.logger.warn({ target: t, err: error }, 'cannot enqueue an invalid key');
      }
    }
    if (event === undefined || event.pending === 0) span.end();
  }

  private process(type: EventType, object: KubeObject): void {
    const at = this.o.now();
    const meta = object.metadata ?? {};
    const name = meta.name;
    if (typeof name !== 'string' || name === '') {
      this.count('MALFORMED', false, 'malformed');
      return;
    }
    const namespace = meta.namespace ?? '';
    const key = `${namespace}/${name}`;
    const role = this.o.role;
    const shard = this.o.shard();

    // Which keys of the controller's resource this object would enqueue (mapped ones only once it passes).
    let targets: TargetRef[] = [];
    if (role.kind === 'self') {
      if (!inShard(shard, namespace, name)) {
        this.forget(key);
        this.count(type, false, 'other-shard');
        return;
      }
      targets = [{ namespace, name }];
    } else if (role.kind === 'owned') {
      const owner = controllerOwner(meta, role.parent);
      const row = this.table.row(key);
      const previous = row === undefined ? undefined : this.table.tag(row);
      if (owner !== undefined) targets.push(owner);
      if (previous !== undefined && previous !== owner?.name) {
        targets.push({ namespace: role.parent.namespaced === false ? '' : namespace, name: previous });
      }
      if (targets.length === 0) {
        this.count(type, false, 'unowned');
        return;
      }
      if (!targets.some((t) => inShard(shard, t.namespace ?? '', t.name))) {
        this.forget(key);
        this.count(type, false, 'other-shard');
        return;
      }
    }

    const row = this.table.row(key);
    const digest = digestMeta(meta, this.o.predicates);
    // A mapped watch's `changed` projects the whole object, which metadata predicates never see.
    if (role.kind === 'watched' && role.watch.changed !== undefined) digest.projections = [hashValue(role.watch.changed(object))];
    let decision = decide(this.table, row, digest, type, this.o.predicates, meta);
    if (decision.pass && decision.reason === 'created' && this.listing && this.firstList && this.since !== undefined) {
      // Known to a previous run of this watcher and unchanged since its cursor: already enqueued then.
      const rv = parseResourceVersion(digest.resourceVersion);
      if (!Number.isNaN(rv) && rv <= this.since) decision = { pass: false, reason: 'unchanged' };
    }
    if (!decision.pass && this.listing && this.enqueueAllNow) decision = { pass: true, reason: 'requeue-all' };

    if (type === 'DELETED') {
      this.forget(key);
    } else {
      const { row: stored } = this.table.upsert(key);
      storeDigest(this.table, stored, digest, this.o.predicates);
      if (role.kind === 'owned') this.table.setTag(stored, controllerOwner(meta, role.parent)?.name);
      for (const { index, named } of this.o.indexes ?? []) index.set(stored, named(meta));
    }

    if (role.kind === 'watched' && decision.pass && role.indexed !== undefined) {
      targets = indexedTargets(role.indexed, meta);
    } else if (role.kind === 'watched' && decision.pass) {
      const mapped = mappedTargets(role.watch, object);
      if (mapped.error !== undefined) {
        this.o.logger.warn({ object: key, err: mapped.error }, 'watches map function failed');
        this.count(type, false, 'map-error');
        return;
      }
      targets = mapped.targets;
    }
    if (role.kind === 'owned' && decision.pass) {
      targets = targets.filter((t) => this.o.ownerWanted?.(t, type === 'DELETED') !== false);
      if (targets.length === 0) decision = { pass: false, reason: 'owner-gone' };
    }
    if (decision.pass && type !== 'LISTED' && this.o.ownWrites !== undefined) {
      // A list item sums up every change since the last list, so only a watch event can be one write of ours.
      const passed = decision;
      const id = ownWriteId({ group: this.o.resource.group, plural: this.o.resource.plural, namespace, name });
      this.o.ownWrites.submit(id, digest.resourceVersion, (own) => {
        this.count(type, !own, own ? 'own-write' : passed.reason);
        if (!own) this.enqueue(targets, { type, reason: passed.reason, at });
      });
    } else {
      this.count(type, decision.pass, decision.reason);
      if (decision.pass) this.enqueue(targets, { type, reason: decision.reason, at });
    }
    if (type !== 'LISTED') this.o.metrics.tracked.set({ resource: this.name }, this.table.size);
  }

  /** An object we held did not appear in a relist: it was deleted while we were not watching. */
  private vanished(key: string): void {
    const row = this.table.row(key);
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const role = this.o.role;
    const cause = { type: 'DELETED', reason: 'vanished', at: this.o.now() };
    if (role.kind === 'self') this.enqueue([{ namespace, name: key.slice(slash + 1) }], cause);
    else if (role.kind === 'owned' && row !== undefined) {
      const name = this.table.tag(row);
      const owner = name === undefined ? undefined : { namespace: role.parent.namespaced === false ? '' : namespace, name };
      if (owner !== undefined && this.o.ownerWanted?.(owner, true) !== false) this.enqueue([owner], cause);
    } else if (role.kind === 'watched' && role.indexed !== undefined) {
      this.enqueue(indexedTargets(role.indexed, { namespace, name: key.slice(slash + 1) }), cause);
    }
    // A mapped object found by `map` cannot be mapped once it vanished (we keep no object): its targets see the next resync.
    this.forget(key);
    this.count('DELETED', true, 'vanished');
  }

  /** Drops an object's row, and its place in the indexes kept over this stream's objects (the row may be reused). */
  private forget(key: string): void {
    const row = this.table.row(key);
    if (row === undefined) return;
    for (const { index } of this.o.indexes ?? []) index.remove(row);
    this.table.delete(key);
  }
}
