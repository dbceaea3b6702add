// The watcher's programmatic API: one list+watch per resource of a controller, feeding reconcile requests to the queue, with cursor, resync, epoch checks and resharding.
import {
  Backoff,
  type Clock,
  type Config,
  type ControllerSpec,
  groupVersionPath,
  type KubeTransport,
  keyOf,
  type Logger,
  type ObjectKey,
  OwnWriteLookup,
  type RedisConnection,
  type ResourceSpec,
  resourceName,
  settleWithin,
  systemClock,
  validateControllerSpec,
} from '@conveyor/shared';
import type { Registry } from 'prom-client';
import { type BatchSink, EnqueueBuffer } from './enqueue-buffer.ts';
import { ListWatch } from './list-watch.ts';
import { COLUMNS, FLAG_DELETING } from './object-table.ts';
import { type OwnWriteChecker, OwnWriteFilter } from './own-write-filter.ts';
import { type CompiledPredicates, compilePredicates } from './predicates.ts';
import { ResourceStream, type StreamRole } from './resource-stream.ts';
import { runResync } from './resync.ts';
import { formatShard, type Shard } from './sharding.ts';
import { TargetIndex } from './target-index.ts';
import { type SelfIndex, selfIndex } from './triggers.ts';
import { WatcherMetrics } from './watcher-metrics.ts';

/** The queue operations the watcher uses; ReconcileQueue provides them. */
export interface WatcherQueue extends BatchSink {
  /** Resolves true when Redis lost the queue; the watcher then enqueues every key again. */
  checkEpoch?(): Promise<boolean>;
  /** Moves parked requests back to the queue (every key when called without one). */
  retryParked?(): Promise<number>;
}

/** Where the last fully enqueued resourceVersion of each stream is kept (WatchCursorStore). */
export interface CursorStore {
  get(stream: string): Promise<string | undefined>;
  set(stream: string, resourceVersion: string): Promise<void>;
}

export interface WatcherSettings {
  /** @defaultValue 500 */
  pageSize?: number;
  /** @defaultValue 300000 */
  watchTimeoutMs?: number;
  /** @defaultValue 60000 */
  bookmarkIntervalMs?: number;
  /** @defaultValue 30000 */
  maxBackoffMs?: number;
  /** 0 turns resync off. @defaultValue 36000000 (10 h) */
  resyncPeriodMs?: number;
  /** @defaultValue 'auto' */
  streamingList?: 'auto' | 'always' | 'never';
  /** Watch lines read but not yet handled, per stream, before the watcher stops reading (list-watch.ts). @defaultValue 16 MiB */
  watchBufferBytes?: number;
  /** How often the cursor is written to Redis. @defaultValue 1000 */
  cursorIntervalMs?: number;
  /** How often the queue epoch is checked. @defaultValue 5000 */
  epochCheckMs?: number;
}

export interface WatcherOptions extends WatcherSettings {
  controller: ControllerSpec;
  transport: KubeTransport;
  queue: WatcherQueue;
  cursor?: CursorStore;
  registry: Registry;
  logger: Logger;
  shard?: Shard | undefined;
  clock?: Clock;
  /**
   * Where the workers record their own writes (OwnWriteLookup): watch events they caused enqueue
   * nothing. Without it every event counts as someone else's (own-write suppression off).
   */
  ownWrites?: OwnWriteChecker | undefined;
}

/**
 * The watcher's settings from Conveyor's configuration, with the workers' own-write records read from the
 * controller's Redis slot when `watcher.ignoreOwnWrites` is on: the one mapping `conveyor watch` and the demo use.
 */
export function watcherSettingsFrom(
  config: Pick<Config, 'watcher' | 'redis'>,
  connection: RedisConnection,
  controller: string,
): WatcherSettings & Pick<WatcherOptions, 'ownWrites'> {
  return {
    pageSize: config.watcher.pageSize,
    watchTimeoutMs: config.watcher.watchTimeout,
    bookmarkIntervalMs: config.watcher.bookmarkInterval,
    maxBackoffMs: config.watcher.maxBackoff,
    resyncPeriodMs: config.watcher.resyncPeriod,
    ownWrites: config.watcher.ignoreOwnWrites ? new OwnWriteLookup(connection, { prefix: config.redis.prefix, controller }) : undefined,
  };
}

interface Running {
  stream: ResourceStream;
  listWatch: ListWatch;
  cursorField: string;
  savedRv: string | undefined;
}

export class Watcher {
  readonly metrics: WatcherMetrics;
  private readonly o: WatcherOptions;
  private readonly spec: ControllerSpec;
  private readonly clock: Clock;
  private readonly buffer: EnqueueBuffer;
  /** Between the streams and the buffer when own writes are suppressed; what `drain` waits on. */
  private readonly ownWrites: OwnWriteFilter | undefined;
  private readonly abort = new AbortController();
  private shardValue: Shard | undefined;
  private running: Running[] = [];
  private tasks: Promise<void>[] = [];
  private started = false;
  private stopping: Promise<void> | undefined;
  private readonly synced = Promise.withResolvers<void>();

  constructor(options: WatcherOptions) {
    this.o = options;
    this.spec = validateControllerSpec(options.controller);
    this.clock = options.clock ?? systemClock;
    this.shardValue = options.shard;
    this.metrics = new WatcherMetrics(options.registry, this.spec.name);
    this.buffer = new EnqueueBuffer({
      sink: options.queue,
      logger: options.logger,
      clock: this.clock,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      onSent: (requests) => {
        const byReason = { event: 0, manual: 0, resync: 0 };
        for (const request of requests) byReason[request.reason] += 1;
        for (const [reason, count] of Object.entries(byReason)) if (count > 0) this.metrics.enqueued.inc({ reason }, count);
      },
      onFailure: () => this.metrics.enqueueFailures.inc({}),
    });
    this.ownWrites =
      options.ownWrites === undefined
        ? undefined
        : new OwnWriteFilter({ lookup: options.ownWrites, buffer: this.buffer, logger: options.logger, clock: this.clock });
  }

  get shard(): Shard | undefined {
    return this.shardValue;
  }

  /** Every stream has completed a list and its requests are in the queue. */
  get ready(): boolean {
    return this.running.length > 0 && this.running.every((r) => r.stream.synced);
  }

  /** Objects whose compact state is held, across streams. */
  get tracked(): number {
    return this.running.reduce((sum, r) => sum + r.stream.table.size, 0);
  }

  /** Keys of the controller's resource held by this replica (the first stream is always the controller's own). */
  *keys(): Generator<ObjectKey> {
    for (const t of this.running[0]?.stream.targetKeys() ?? []) yield keyOf(this.spec.for, t);
  }

  /**
   * Whether a child's event should reconcile `owner`: not when the controller's own stream does not hold
   * it (deleted — garbage collection deletes its children right after — or outside the selector or
   * shard), nor for a child deleted while the owner is being deleted by a controller with a finalizer:
   * such an owner is finalized, not reconciled, and a finalize that failed is retried on its own.
   * Undefined until the own stream's first list is in: it cannot tell yet.
   */
  private ownerWanted(owner: { namespace?: string; name: string }, deletedChild: boolean): boolean | undefined {
    const self = this.running[0]?.stream;
    if (self === undefined || !self.synced) return undefined;
    const row = self.table.row(`${owner.namespace ?? ''}/${owner.name}`);
    if (row === undefined) return false;
    const finalizing = deletedChild && this.spec.finalizer !== undefined && (self.table.get(row, COLUMNS.flags) & FLAG_DELETING) !== 0;
    return !finalizing;
  }

  /** Starts every stream; resolves once they are running (not synced: see `ready`, `waitReady`). */
  async start(): Promise<void> {
    if (this.started) throw new Error('watcher already started');
    this.started = true;
    const signal = this.abort.signal;
    const predicates = compilePredicates(this.spec.predicates);
    const roles: { resource: ResourceSpec; role: StreamRole; selector: Selector; predicates: CompiledPredicates }[] = [
      { resource: this.spec.for, role: { kind: 'self' }, selector: this.spec.selector ?? {}, predicates },
    ];
    // Indexes over the controller's own objects, kept by its stream, for `watches` entries that map through them.
    const indexes: SelfIndex[] = [];
    if ((this.spec.owns ?? []).length > 0) {
      const parent = { ...this.spec.for, kind: this.spec.for.kind ?? (await this.discoverKind(this.spec.for, signal)) };
      for (const child of this.spec.owns ?? []) {
        const role: StreamRole = { kind: 'owned', parent };
        roles.push({
          resource: child,
          role,
          selector: selectorOf(child),
          predicates: compilePredicates(child.predicates ?? ['resourceVersion']),
        });
      }
    }
    for (const watch of this.spec.watches ?? []) {
      let role: StreamRole = { kind: 'watched', watch };
      if (watch.index !== undefined) {
        const index = new TargetIndex();
        const namespaced = watch.resource.namespaced ?? true;
        indexes.push(selfIndex(index, watch.index, namespaced));
        role = { ...role, indexed: { index, namespaced, keyAt: (row) => this.running[0]?.stream.table.keyAt(row) } };
      }
      roles.push({ resource: watch.resource, role, selector: selectorOf(watch), predicates: streamPredicates(role, predicates) });
    }
    const seen = new Set<string>();
    for (const { resource, role, selector, predicates: streamPredicates } of roles) {
      let name = resourceName(resource);
      while (seen.has(name)) name = `${name}+`;
      seen.add(name);
      const stream = new ResourceStream({
        name,
        role,
        resource,
        target: this.spec.for,
        ownWrites: this.ownWrites,
        ownerWanted: (owner, deletedChild) => this.ownerWanted(owner, deletedChild),
        ...(role.kind === 'self' ? { indexes } : {}),
        predicates: streamPredicates,
        shard: () => this.shardValue,
        buffer: this.buffer,
        metrics: this.metrics,
        logger: this.o.logger.child({ resource: name }),
        now: () => this.clock.now(),
        onSynced: () => {
          if (this.ready) this.synced.resolve();
        },
      });
      const listWatch = new ListWatch({
        resource,
        namespace: selector.namespace,
        labelSelector: selector.labels,
        fieldSelector: selector.fields,
        // A `changed` projection reads data, so that watch needs whole objects.
        metadataOnly: !(role.kind === 'watched' && role.watch.changed !== undefined),
        pageSize: this.o.pageSize ?? 500,
        watchTimeoutMs: this.o.watchTimeoutMs ?? 300_000,
        bookmarkIntervalMs: this.o.bookmarkIntervalMs ?? 60_000,
        maxBackoffMs: this.o.maxBackoffMs ?? 30_000,
        streamingList: this.o.streamingList ?? 'auto',
        ...(this.o.watchBufferBytes === undefined ? {} : { bufferChars: this.o.watchBufferBytes }),
        whenRoom: () => this.buffer.whenRoom(),
        transport: this.o.transport,
        handler: stream,
        logger: this.o.logger.child({ resource: name }),
        clock: this.clock,
      });
      const cursorField = `${name}|${formatShard(this.shardValue)}`;
      let savedRv: string | undefined;
      try {
        // Redis may be away at start: the read waits for it, but stop() must not wait for Redis.
        savedRv = await untilAborted(this.o.cursor?.get(cursorField), signal);
      } catch (error) {
        if (signal.aborted) throw new Error('the watcher was stopped while starting');
        this.o.logger.warn({ err: error, stream: cursorField }, 'cannot read the watch cursor; every object counts as new');
      }
      stream.resumeFrom(savedRv);
      if (savedRv !== undefined) this.o.logger.info({ stream: cursorField, resourceVersion: savedRv }, 'resuming after a restart');
      this.running.push({ stream, listWatch, cursorField, savedRv });
    }
    await this.armEpoch(signal);
    this.metrics.leader.set({}, 1);
    for (const r of this.running) this.tasks.push(r.listWatch.run(signal));
    if (this.o.cursor !== undefined) this.tasks.push(this.every(this.o.cursorIntervalMs ?? 1_000, () => this.saveCursors()));
    if (this.o.queue.checkEpoch !== undefined) this.tasks.push(this.every(this.o.epochCheckMs ?? 5_000, () => this.checkEpoch()));
    const resyncPeriodMs = this.o.resyncPeriodMs ?? 36_000_000;
    if (resyncPeriodMs > 0) this.tasks.push(this.resyncAfterSync(resyncPeriodMs, signal));
  }

  /** Resolves the first time every stream has synced (never, if the watcher stops before). */
  whenReady(): Promise<void> {
    return this.synced.promise;
  }

  /** Resolves once `ready`, or rejects after `timeoutMs` or when the watcher stops first. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const stopped = new Promise<never>((_, reject) => {
      const fail = () => reject(new Error('watcher stopped'));
      if (this.abort.signal.aborted) fail();
      else this.abort.signal.addEventListener('abort', fail, { once: true });
    });
    const timeout = new Promise<never>((_, reject) => {
      const timer = this.clock.setTimeout(() => reject(new Error(`watcher not synced within ${timeoutMs} ms`)), timeoutMs);
      this.synced.promise.then(
        () => timer.cancel(),
        () => undefined,
      );
    });
    await Promise.race([this.synced.promise, stopped, timeout]);
  }

  /** Changes this replica's shard and relists, so keys it gains are enqueued (duplicates merge; no gaps). */
  reshard(shard: Shard | undefined): void {
    this.o.logger.info({ from: formatShard(this.shardValue), to: formatShard(shard) }, 'reshard: relisting');
    this.shardValue = shard;
    for (const r of this.running) {
      r.cursorField = `${r.stream.name}|${formatShard(shard)}`;
      r.listWatch.relist('requested');
    }
  }

  /** Relists every stream and enqueues every object (Redis lost the queue). */
  requeueAll(): void {
    for (const r of this.running) {
      r.stream.enqueueAllOnNextList();
      r.listWatch.relist('requested');
    }
  }

  /**
   * Stops watching (also a start still in progress); waits up to `graceMs` in all for requests
   * already taken to reach the queue and for the cursor to be saved — Redis may be away, so nothing
   * here waits longer. Idempotent: later calls share the first one's promise.
   */
  stop(graceMs = 5_000): Promise<void> {
    this.stopping ??= this.stopWithin(graceMs);
    return this.stopping;
  }

  private async stopWithin(graceMs: number): Promise<void> {
    const deadline = this.clock.now() + graceMs;
    const left = () => Math.max(0, deadline - this.clock.now());
    this.abort.abort();
    await settleWithin(Promise.allSettled(this.tasks), left());
    const drained = (await settleWithin((this.ownWrites ?? this.buffer).drain(), left())) && this.buffer.size === 0;
    const saved = drained && (await settleWithin(this.saveCursors(), left()));
    if (!drained)
      this.o.logger.warn({ waiting: this.buffer.size }, 'stopped with requests not yet enqueued; the next start re-enqueues them');
    else if (!saved) this.o.logger.warn('stopped before the cursor was saved; the next start enqueues what changed since the last save');
    this.ownWrites?.close();
    this.buffer.close();
    this.metrics.leader.set({}, 0);
  }

  private async saveCursors(): Promise<void> {
    if (this.o.cursor === undefined) return;
    for (const r of this.running) {
      const rv = r.listWatch.resourceVersion;
      if (!r.stream.synced || rv === undefined || rv === r.savedRv) continue;
      await (this.ownWrites ?? this.buffer).drain();
      try {
        await this.o.cursor.set(r.cursorField, rv);
        r.savedRv = rv;
      } catch (error) {
        this.o.logger.warn({ err: error }, 'cannot write the watch cursor; will try again');
      }
    }
  }

  /**
   * Notes the queue's epoch before the first list enqueues anything, so that a Redis that loses its
   * data at any time after (even before the first periodic check) is noticed and answered with a relist.
   */
  private async armEpoch(signal: AbortSignal): Promise<void> {
    try {
      await untilAborted(this.o.queue.checkEpoch?.(), signal);
    } catch (error) {
      if (signal.aborted) throw new Error('the watcher was stopped while starting');
      this.o.logger.warn({ err: error }, 'cannot read the queue epoch; the periodic check tries again');
    }
  }

  private async checkEpoch(): Promise<void> {
    try {
      if (await this.o.queue.checkEpoch?.()) {
        this.o.logger.warn('the queue lost its contents (epoch key gone): relisting and enqueueing every object');
        this.requeueAll();
      }
    } catch (error) {
      this.o.logger.warn({ err: error }, 'cannot check the queue epoch; will try again');
    }
  }

  private async every(ms: number, fn: () => Promise<void>): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      await this.clock.sleep(ms, signal);
      if (!signal.aborted) await fn();
    }
  }

  private async resyncAfterSync(periodMs: number, signal: AbortSignal): Promise<void> {
    await Promise.race([this.synced.promise, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
    await runResync(
      {
        periodMs,
        keys: () => this.keys(),
        buffer: this.buffer,
        ...(this.o.queue.retryParked === undefined ? {} : { retryParked: () => (this.o.queue.retryParked as () => Promise<number>)() }),
        clock: this.clock,
        logger: this.o.logger,
      },
      signal,
    );
  }

  /** The kind of a resource from API discovery (needed to match ownerReferences); retries until it answers. */
  private async discoverKind(resource: ResourceSpec, signal: AbortSignal): Promise<string> {
    const path = groupVersionPath(resource);
    const backoff = new Backoff({ base: 200, max: this.o.maxBackoffMs ?? 30_000 });
    for (;;) {
      try {
        const list = (await this.o.transport.getJson(path, {}, 'application/json', signal)) as {
          resources?: { name: string; kind: string }[];
        };
        const found = list.resources?.find((r) => r.name === resource.plural);
        if (found !== undefined) return found.kind;
        throw new Error(`${path} does not serve ${resource.plural}`);
      } catch (error) {
        if (signal.aborted) throw error;
        const delay = backoff.next();
        this.o.logger.warn(
          { err: error, retryInMs: delay },
          `cannot discover the kind of ${resource.plural}; set for.kind to skip discovery`,
        );
        await this.clock.sleep(delay, signal);
      }
    }
  }
}

type Selector = { labels?: string; fields?: string; namespace?: string };

/** The server-side narrowing of an `owns` or `watches` entry. */
function selectorOf(entry: Selector): Selector {
  return {
    ...(entry.labels === undefined ? {} : { labels: entry.labels }),
    ...(entry.fields === undefined ? {} : { fields: entry.fields }),
    ...(entry.namespace === undefined ? {} : { namespace: entry.namespace }),
  };
}

/**
 * A mapped watch passes when its `changed` projection moves — the stream fills that projection from
 * the whole object — or on any change. (The controller's own predicates apply to its own objects; an
 * `owns` entry brings its own, any change by default.)
 */
function streamPredicates(role: StreamRole, own: CompiledPredicates): CompiledPredicates {
  if (role.kind === 'self') return own;
  if (role.kind === 'watched' && role.watch.changed !== undefined) return compilePredicates([{ name: 'changed', changed: () => 0 }]);
  return compilePredicates(['resourceVersion']);
}

/** `work`'s result, or a rejection as soon as `signal` aborts (the work itself goes on, unobserved). */
function untilAborted<T>(work: Promise<T> | undefined, signal: AbortSignal): Promise<T | undefined> {
  if (work === undefined) return Promise.resolve(undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
