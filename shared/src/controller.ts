// A controller definition — what a user writes: resource, selectors, predicates, owned and mapped triggers, reconcile and finalize.
//
// The watcher reads the watch side of the definition (resource, selectors, predicates, triggers) and
// the workers the reconcile side (`setup`, `reconcile`, `finalize`); both load the same module and
// check it with the same `checkController`.
import type { Config } from './config.ts';
import { parseDuration } from './duration.ts';
import { InvalidArgumentError, type TerminalError } from './errors.ts';
import type { KubeClient, KubeObject, ObjectMeta, StoredObject } from './kube/types.ts';
import type { Logger } from './logger.ts';
import type { ObjectKey } from './object-key.ts';
import { type ResourceRef, validateResourceRef } from './object-key.ts';
import type { Outcome } from './outcome.ts';

/** A resource as a controller names it: `plural` is the URL segment, `kind` what ownerReferences carry. */
export interface ResourceSpec extends ResourceRef {
  /** Kind, such as `Widget`. When omitted the watcher asks API discovery. */
  kind?: string;
  /** Whether objects live in namespaces. @defaultValue true */
  namespaced?: boolean;
}

/** What an event predicate decided and why; the reason labels the events metric. */
export interface PredicateResult {
  pass: boolean;
  reason: string;
}

/**
 * What the watcher remembers of an object between events. The watcher keeps no object, so a
 * predicate function sees this summary as "old", never the old metadata itself.
 */
export interface PreviousMeta {
  generation: number;
  resourceVersion: string;
  deleting: boolean;
  hasFinalizers: boolean;
}

/** Built-in predicates; an update passes when any listed predicate passes. */
export const BUILT_IN_PREDICATES = ['generation', 'labels', 'annotations', 'finalizers', 'deletion', 'resourceVersion'] as const;
export type BuiltInPredicate = (typeof BUILT_IN_PREDICATES)[number];

/**
 * A user predicate. `changed` projects metadata to a value; the watcher keeps only its hash and
 * passes an update when the hash moves. `test` sees the previous summary and the new metadata.
 */
export type UserPredicate =
  | { name: string; changed(meta: ObjectMeta): unknown }
  | { name: string; test(previous: PreviousMeta | undefined, meta: ObjectMeta): boolean | PredicateResult };

export type PredicateSpec = BuiltInPredicate | UserPredicate;

/** A reference to an object of the controller's own resource, as returned by a `watches` map function. */
export interface TargetRef {
  /** Omitted: the namespace of the watched object that mapped to it (empty for cluster-scoped targets). */
  namespace?: string;
  name: string;
}

/** Which label or annotation of the controller's own objects names a watched object. */
export type WatchIndex = { label: string } | { annotation: string };

/** Events of another resource mapped to keys of the controller's resource (controller-runtime `Watches`). */
export interface WatchSpec<O extends KubeObject = KubeObject> {
  resource: ResourceSpec;
  /** Label selector, as kubectl writes it: `app=web,tier in (gold,silver)`. */
  labels?: string;
  /** Field selector on metadata.name / metadata.namespace: `metadata.name=global`. */
  fields?: string;
  /** Only this namespace; omitted: all namespaces. */
  namespace?: string;
  /** The keys of the controller's resource that this object affects. Give `map` or `index`. */
  map?(object: O): readonly TargetRef[];
  /**
   * Finds the targets through the controller's own objects instead of the watched one: the objects of
   * the controller's resource whose label (or annotation) holds this object's name — in the object's
   * namespace, or in any namespace when the watched resource is cluster-scoped. The watcher keeps this
   * index from the metadata it already watches, so it follows label changes on those objects and
   * needs nothing written on the watched one.
   */
  index?: WatchIndex;
  /**
   * A projection of the object (for example `dataKeys(['special'])`); an update passes only when the
   * projection changed. Without it every update passes. A `changed` needs the whole object, so such a
   * watch is not metadata-only; narrow it with `labels`/`fields`.
   */
  changed?(object: O): unknown;
}

/**
 * A child resource (controller-runtime `Owns`): events of children whose controller ownerReference
 * points at the controller's kind enqueue that owner. The resource fields come first, so a tool
 * that reads `owns` as a list of resources (RBAC generation) reads these too.
 */
export interface OwnsSpec extends ResourceSpec {
  /**
   * Label selector, as kubectl writes it: only these children are listed, watched and tracked. Label
   * the children your controller creates and select them here, or the watcher holds every object of
   * the kind in the cluster. A child that loses the label leaves the watch, which reconciles its owner.
   */
  labels?: string;
  /** Field selector on metadata.name / metadata.namespace. */
  fields?: string;
  /** Only this namespace; omitted: all namespaces. */
  namespace?: string;
  /**
   * Which updates of a child enqueue its owner; creation, deletion and finalizer changes always do.
   * @defaultValue ['resourceVersion']: any change, because a child's status (which moves no generation)
   * is usually what its owner reacts to, and some kinds (ConfigMaps) have no generation at all
   */
  predicates?: readonly PredicateSpec[];
}

/** The watch side of a controller: what the watcher reads. */
export interface ControllerSpec<T extends KubeObject = KubeObject> {
  /** Queue name and metric label; lowercase letters, digits and dashes. */
  name: string;
  for: ResourceSpec;
  selector?: { labels?: string; fields?: string; namespace?: string };
  /** Which updates enqueue. @defaultValue ['generation'] (creation and deletion always do) */
  predicates?: readonly PredicateSpec[];
  /** Child resources whose controller ownerReference points at our kind: their events enqueue the owner. */
  owns?: readonly OwnsSpec[];
  watches?: readonly WatchSpec[];
  /** The finalizer the workers add and remove. */
  finalizer?: string;
  /** Type witness only; never set. */
  readonly __object?: T;
}

/**
 * The annotations that ask for a reconcile now, whatever the predicates say, when their value changes: Flux's
 * (written by `flux reconcile` and `conveyor enqueue --annotate`, with the time) and Conveyor's own.
 */
export const REQUESTED_AT_ANNOTATIONS = {
  flux: 'reconcile.fluxcd.io/requestedAt',
  conveyor: 'reconcile.conveyor.dev/requestedAt',
} as const;

/** The manual-reconcile request an object carries: Flux's annotation when set, else Conveyor's. */
export function requestedAtOf(meta: ObjectMeta | undefined): string | undefined {
  const annotations = meta?.annotations;
  return annotations?.[REQUESTED_AT_ANNOTATIONS.flux] ?? annotations?.[REQUESTED_AT_ANNOTATIONS.conveyor];
}

/** The field manager of every write a controller's workers make: `conveyor-<name>`. */
export function fieldManagerOf(controller: string): string {
  return `conveyor-${controller}`;
}

/** Every resource a controller names (for, owns, watches): the kinds its workers' `apply` maps to a URL without discovery. */
export function controllerResources(spec: Pick<ControllerSpec, 'for' | 'owns' | 'watches'>): ResourceSpec[] {
  return [spec.for, ...(spec.owns ?? []), ...(spec.watches ?? []).map((w) => w.resource)];
}

export type StatusOf<T> = T extends { status?: infer S } ? NonNullable<S> : Record<string, unknown>;
/**
 * A change to `status`: listed fields replace (objects merge), `null` deletes; with status written by
 * server-side apply (the default), a list of objects with a `type` (conditions) merges item by type.
 */
export type StatusPatch<T> = { [K in keyof StatusOf<T>]?: StatusOf<T>[K] | null };

/** What one run of `reconcile` or `finalize` gets besides the object. */
export interface ReconcileContext<T extends KubeObject = KubeObject, D = undefined> {
  /** Kubernetes client; every call draws from the cluster-wide API budget. */
  client: KubeClient;
  /** Child logger carrying reconcileId, key and attempt. */
  log: Logger;
  key: ObjectKey;
  /** 1 on the first try of a request, higher on retries. */
  attempt: number;
  reconcileId: string;
  /** Why the request was made: event, manual or resync. */
  reason: string;
  /** Aborted when the run passed its timeout: stop, the retry does the work. */
  signal: AbortSignal;
  /**
   * Collects a status change. All collected changes are written once after `reconcile` returns
   * (or throws), guarded by the resourceVersion read, and not at all when they change nothing:
   * by server-side apply to /status (conditions merge by type; patch only your own), or by a JSON
   * merge patch with `statusWrite: 'merge-patch'`. Ignored during `finalize`.
   */
  patchStatus(patch: StatusPatch<T>): void;
  /**
   * Kubernetes Events about the object (events.k8s.io/v1, what `kubectl describe` and `kubectl events` show):
   * `ctx.events.normal('Provisioned', 'bucket b-1 created')`, `ctx.events.warning('QuotaExceeded', ...)`.
   * A repeat of the same Event counts up its `series.count` instead of making a new one; writes are paid from
   * the API budget, limited per object as client-go's recorder limits them, and a failed write never fails the run.
   */
  events: ObjectEvents;
  /**
   * Makes the object being reconciled the controller owner of `child` (controller-runtime's
   * SetControllerReference): adds an ownerReference with apiVersion, kind, name, uid, `controller: true` and
   * `blockOwnerDeletion: true`, replacing one to the same owner, and returns `child`. The garbage collector then
   * deletes the child with its owner, and an `owns` watch maps the child's events to it. Throws TerminalError
   * when another object already controls the child, or when the child lives in another namespace.
   */
  own<C extends KubeObject>(child: C): C;
  /** What the controller's `setup` returned. */
  deps: D;
  /** Outcome helpers (also exported by @conveyor/workers): return `ctx.done` or `ctx.requeueAfter('30s')`. */
  done: Outcome;
  requeueAfter: (delay: string | number) => Outcome;
  /** Throw `new ctx.TerminalError(reason)` when retrying cannot help: counted and parked, not retried. */
  TerminalError: typeof TerminalError;
}

/** What `errorPolicy` gets besides the error and the object: the failed run's identity, logger and deps. */
export type ErrorPolicyContext<D = undefined> = Pick<
  ReconcileContext<KubeObject, D>,
  'key' | 'attempt' | 'reason' | 'reconcileId' | 'log' | 'deps'
>;

/** What a reconcile records Events with: `ctx.events`. */
export interface ObjectEvents {
  /** Records a Normal Event about the object: `reason` is a short UpperCamelCase word, `note` what happened, for a person. */
  normal(reason: string, note: string, options?: EventOptions): void;
  /** Records a Warning Event about the object. */
  warning(reason: string, note: string, options?: EventOptions): void;
}

export interface EventOptions {
  /** What the controller was doing (events.k8s.io `action`). @defaultValue 'Reconcile' (during finalize: 'Finalize') */
  action?: string;
}

export interface SetupEnvironment {
  config: Config;
  logger: Logger;
}

/** The reconcile side; it runs in container workers and in Lambda. */
export interface ControllerHandlers<T extends KubeObject, D> {
  /** Runs once per process (or Lambda cold start); its result is `ctx.deps`. A `close()` on it runs at shutdown. */
  setup?: (env: SetupEnvironment) => D | Promise<D>;
  /** Level-based: look at the object as it is now and make the world match. Returns an outcome, or nothing for done. */
  reconcile: (object: StoredObject<T>, ctx: ReconcileContext<T, D>) => Promise<Outcome | undefined> | Outcome | undefined;
  /**
   * Idempotent cleanup of what lives outside Kubernetes; our finalizer is removed once it resolves with
   * nothing (or `done`). Return `requeueAfter(d)` when the cleanup was started but has not finished
   * ("the external resource is still being deleted"): the finalizer stays, no attempt is spent, and
   * `finalize` runs again after `d`. A throw backs off and retries like a failed reconcile.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a finalize written as `async (o, ctx) => { await cleanup(); }` returns Promise<void>, which must stay valid.
  finalize?: (object: StoredObject<T>, ctx: ReconcileContext<T, D>) => Promise<Outcome | undefined | void> | Outcome | undefined | void;
  /**
   * How long after the object's deletionTimestamp `finalize` may keep answering `requeueAfter`. Past it, the
   * request is parked with the reason (`conveyor status` and `conveyor parked list` show it) and `finalize`
   * runs again at the next resync or `conveyor parked retry`, so a cleanup that can never finish is seen
   * rather than polled forever. A duration (`'1h'`) or milliseconds.
   * @defaultValue '1h'
   */
  finalizeDeadline?: string | number;
  /**
   * How long to wait before retrying a failed reconcile or finalize (kube-rs's `error_policy`): return a delay
   * (`'30s'` or milliseconds) for errors you know, or nothing for the default per-key exponential backoff
   * (`queue.backoff`). Called for errors worth retrying, not for TerminalError, throttling or a timed-out
   * run's abort; the retry still spends an attempt, so `queue.attempts` still parks a request that never
   * succeeds. `object` is the object as the failed run read it (undefined when reading it failed). A throw or
   * an invalid delay falls back to the default backoff, with a warning.
   * @defaultValue the per-key exponential backoff
   */
  errorPolicy?: (error: unknown, object: StoredObject<T> | undefined, ctx: ErrorPolicyContext<D>) => string | number | undefined;
  /**
   * How collected status is written: server-side apply to /status with the controller's field manager
   * (fields it applied before and still means are kept; other managers' conditions are left alone), or
   * a JSON merge patch (a list such as `conditions` is replaced whole). Both carry the resourceVersion read.
   * @defaultValue 'apply'
   */
  statusWrite?: 'apply' | 'merge-patch';
  /**
   * Write `status.lastHandledReconcileAt` as Flux controllers do: the value of the manual-reconcile annotation
   * (`reconcile.fluxcd.io/requestedAt`, else `reconcile.conveyor.dev/requestedAt`) a reconcile handled, with the
   * status it writes (also when it throws), so `flux reconcile` and tools built for it see their request answered.
   * Declare the field (a string) in your CRD's status schema, or the API server prunes it.
   * @defaultValue false
   */
  lastHandledReconcileAt?: boolean;
}

export type ControllerDefinition<T extends KubeObject = KubeObject, D = undefined> = ControllerSpec<T> & ControllerHandlers<T, D>;

/** A checked definition; also a valid ControllerSpec for the watcher. */
export type Controller<T extends KubeObject = KubeObject, D = undefined> = Readonly<ControllerDefinition<T, D>>;

/** Runs `close()` of what a controller's `setup` returned, if it has one; a failure is reported, never thrown (shutdown goes on). */
export async function closeControllerDeps(deps: unknown, onError: (error: unknown) => void): Promise<void> {
  const closable = deps as { close?: () => unknown } | undefined | null;
  if (typeof closable?.close !== 'function') return;
  try {
    await closable.close();
  } catch (error) {
    onError(error);
  }
}

/** A `changed` projection over chosen keys of a ConfigMap's or Secret's `data`. */
export function dataKeys(keys: readonly string[]): (object: KubeObject) => unknown {
  return (object) => {
    const data = (object.data ?? {}) as Record<string, unknown>;
    return keys.map((key) => [key, data[key] ?? null]);
  };
}

/** The default of `finalizeDeadline`: an hour after deletion, a finalize still asking to look again is parked. */
export const DEFAULT_FINALIZE_DEADLINE_MS = 3_600_000;

/** A duration option of a definition in milliseconds (`'1h'` or a number of ms). Assumes a checked definition. */
export function durationOption(value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  return typeof value === 'number' ? value : parseDuration(value);
}

function durationProblem(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? undefined : `must be above 0 ms, got ${value}`;
  if (typeof value !== 'string') return "must be a duration such as '1h' or a number of milliseconds";
  try {
    return parseDuration(value) > 0 ? undefined : `must be above 0, got '${value}'`;
  } catch (error) {
    return (error as Error).message;
  }
}

const CONTROLLER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks the watch side of a loaded definition; throws InvalidArgumentError listing every problem, naming the field. */
export function validateControllerSpec(spec: unknown): ControllerSpec {
  if (spec === null || typeof spec !== 'object') {
    throw new InvalidArgumentError('controller definition must be an object made with defineController({...})');
  }
  const problems = specProblems(spec);
  if (problems.length > 0) {
    throw new InvalidArgumentError(`invalid controller definition:\n  ${problems.join('\n  ')}`);
  }
  return spec as ControllerSpec;
}

/** Every problem of the watch side, each naming its field. */
function specProblems(spec: object): string[] {
  const problems: string[] = [];
  const c = spec as Partial<ControllerSpec> & Record<string, unknown>;
  if (typeof c.name !== 'string' || c.name.length > 63 || !CONTROLLER_NAME.test(c.name)) {
    problems.push('name: must be lowercase letters, digits and dashes, at most 63 characters');
  }
  const checkResource = (path: string, r: unknown) => {
    if (r === null || typeof r !== 'object') {
      problems.push(`${path}: must be { group, version, plural }`);
      return;
    }
    const ref = r as Partial<ResourceSpec>;
    if (typeof ref.group !== 'string' || typeof ref.version !== 'string' || typeof ref.plural !== 'string') {
      problems.push(`${path}: needs string group ('' for core), version and plural`);
      return;
    }
    try {
      validateResourceRef({ group: ref.group, version: ref.version, plural: ref.plural });
    } catch (error) {
      problems.push(`${path}: ${(error as Error).message}`);
    }
  };
  checkResource('for', c.for);
  problems.push(...predicateProblems('predicates', c.predicates));
  for (const [i, r] of (c.owns ?? []).entries()) {
    checkResource(`owns[${i}]`, r);
    problems.push(...selectorProblems(`owns[${i}]`, r), ...predicateProblems(`owns[${i}].predicates`, r?.predicates));
  }
  for (const [i, w] of (c.watches ?? []).entries()) {
    checkResource(`watches[${i}].resource`, w?.resource);
    problems.push(...selectorProblems(`watches[${i}]`, w), ...mappingProblems(`watches[${i}]`, w));
    if (w?.changed !== undefined && typeof w.changed !== 'function') problems.push(`watches[${i}].changed: must be a function`);
  }
  if (c.finalizer !== undefined && (typeof c.finalizer !== 'string' || !/^[a-z0-9.-]+\/[A-Za-z0-9._-]+$/.test(c.finalizer))) {
    problems.push('finalizer: must be a qualified name such as example.com/cleanup');
  }
  return problems;
}

/** Problems of a list of predicates, each naming its place (`owns[0].predicates[1]`). */
function predicateProblems(path: string, predicates: unknown): string[] {
  if (predicates === undefined) return [];
  if (!Array.isArray(predicates)) return [`${path}: must be a list of predicates`];
  const problems: string[] = [];
  for (const [i, p] of (predicates as unknown[]).entries()) {
    if (typeof p === 'string') {
      if (!(BUILT_IN_PREDICATES as readonly string[]).includes(p)) {
        problems.push(`${path}[${i}]: unknown predicate "${p}"; built-ins are ${BUILT_IN_PREDICATES.join(', ')}`);
      }
    } else if (
      p === null ||
      typeof p !== 'object' ||
      typeof (p as { name?: unknown }).name !== 'string' ||
      !/^[a-zA-Z0-9_-]+$/.test((p as { name: string }).name)
    ) {
      problems.push(`${path}[${i}]: a user predicate needs a name of letters, digits, '-' or '_'`);
    } else if (typeof (p as { changed?: unknown }).changed !== 'function' && typeof (p as { test?: unknown }).test !== 'function') {
      problems.push(`${path}[${i}] (${(p as { name: string }).name}): needs a changed(meta) or test(previous, meta) function`);
    }
  }
  return problems;
}

/** A `watches` entry maps through exactly one of `map` (a function) or `index` (a label or annotation key). */
function mappingProblems(path: string, watch: unknown): string[] {
  const w = (watch ?? {}) as { map?: unknown; index?: unknown };
  if (w.map !== undefined && w.index !== undefined) return [`${path}: give map or index, not both`];
  if (w.index === undefined) {
    return typeof w.map === 'function' ? [] : [`${path}.map: must be a function returning [{ namespace, name }] (or give index)`];
  }
  const index = w.index as { label?: unknown; annotation?: unknown } | null;
  const key = index === null || typeof index !== 'object' ? undefined : (index.label ?? index.annotation);
  const both = index !== null && typeof index === 'object' && index.label !== undefined && index.annotation !== undefined;
  if (both || typeof key !== 'string' || !/^([a-z0-9.-]+\/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(key)) {
    return [`${path}.index: must be { label: 'key' } or { annotation: 'key' } with a Kubernetes label or annotation key`];
  }
  return [];
}

/** Problems of the selector fields of an `owns` or `watches` entry: each must be a string when given. */
function selectorProblems(path: string, entry: unknown): string[] {
  if (entry === null || typeof entry !== 'object') return [];
  const e = entry as Record<string, unknown>;
  return ['labels', 'fields', 'namespace']
    .filter((field) => e[field] !== undefined && (typeof e[field] !== 'string' || e[field] === ''))
    .map((field) => `${path}.${field}: must be a non-empty string`);
}

/**
 * Checks a controller definition and returns it typed: the resource type `T` (given, or inferred
 * from `reconcile`'s parameter) flows into `reconcile`, `finalize` and `ctx.patchStatus`; `D` is
 * what `setup` returns. Throws InvalidArgumentError naming every problem.
 */
export function defineController<T extends KubeObject = KubeObject, D = undefined>(
  definition: ControllerDefinition<T, D>,
): Controller<T, D> {
  return checkController(definition) as unknown as Controller<T, D>;
}

/** Validates what a controller module exported (both sides of it), naming every problem. */
export function checkController(value: unknown): Controller<KubeObject, unknown> {
  if (value === null || typeof value !== 'object') {
    throw new InvalidArgumentError('controller definition must be an object made with defineController({...})');
  }
  const problems = specProblems(value);
  const handlers = value as Partial<ControllerHandlers<KubeObject, unknown>> & { finalizer?: unknown };
  if (typeof handlers.reconcile !== 'function') problems.push('reconcile: must be a function (object, ctx) => outcome');
  if (handlers.finalize !== undefined && typeof handlers.finalize !== 'function') problems.push('finalize: must be a function');
  if (handlers.setup !== undefined && typeof handlers.setup !== 'function') problems.push('setup: must be a function');
  if (handlers.statusWrite !== undefined && handlers.statusWrite !== 'apply' && handlers.statusWrite !== 'merge-patch') {
    problems.push(`statusWrite: must be 'apply' or 'merge-patch'`);
  }
  if (handlers.finalizer !== undefined && handlers.finalize === undefined) {
    problems.push('finalize: missing, but finalizer is set; nothing would ever remove the finalizer');
  }
  if (handlers.lastHandledReconcileAt !== undefined && typeof handlers.lastHandledReconcileAt !== 'boolean') {
    problems.push('lastHandledReconcileAt: must be true or false');
  }
  if (handlers.errorPolicy !== undefined && typeof handlers.errorPolicy !== 'function')
    problems.push('errorPolicy: must be a function (error, object, ctx) => delay');
  if (handlers.finalizeDeadline !== undefined && durationProblem(handlers.finalizeDeadline) !== undefined) {
    problems.push(`finalizeDeadline: ${durationProblem(handlers.finalizeDeadline)}`);
  }
  if (handlers.finalizer === undefined && handlers.finalize !== undefined) {
    problems.push('finalizer: missing, but finalize is set; without a finalizer it would never run');
  }
  if (problems.length > 0) throw new InvalidArgumentError(`invalid controller definition:\n  ${problems.join('\n  ')}`);
  return Object.freeze({ ...(value as ControllerDefinition<KubeObject, unknown>) });
}
