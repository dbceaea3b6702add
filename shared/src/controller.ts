// The watch side of a controller definition — resource, selectors, predicates, owned and mapped triggers — shared by watcher and workers.
//
// The watcher imports a user's controller module only for these fields; the workers extend the
// type with `reconcile` and `finalize` (workers/src). `defineController` returns its argument
// unchanged: it exists for the types and so both sides read the same object.
import { InvalidArgumentError } from './errors.ts';
import { validateResourceRef } from './object-key.ts';

/** A resource as a controller names it: `plural` is the URL segment, `kind` what ownerReferences carry. */
export interface ResourceSpec {
  /** API group; '' for core. */
  group: string;
  version: string;
  /** Lowercase plural, such as `widgets` or `configmaps`. */
  plural: string;
  /** Kind, such as `Widget`. When omitted the watcher asks API discovery. */
  kind?: string;
  /** Whether objects live in namespaces. @defaultValue true */
  namespaced?: boolean;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The metadata a watcher sees (metadata-only watch): never the spec or status. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string | Date;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
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

/** Events of another resource mapped to keys of the controller's resource (controller-runtime `Watches`). */
export interface WatchSpec<O extends KubeObject = KubeObject> {
  resource: ResourceSpec;
  /** Label selector, as kubectl writes it: `app=web,tier in (gold,silver)`. */
  labels?: string;
  /** Field selector on metadata.name / metadata.namespace: `metadata.name=global`. */
  fields?: string;
  /** Only this namespace; omitted: all namespaces. */
  namespace?: string;
  /** The keys of the controller's resource that this object affects. */
  map(object: O): readonly TargetRef[];
  /**
   * A projection of the object (for example `dataKeys(['special'])`); an update passes only when the
   * projection changed. Without it every update passes. A `changed` needs the whole object, so such a
   * watch is not metadata-only; narrow it with `labels`/`fields`.
   */
  changed?(object: O): unknown;
}

/** The watch-side part of a controller. Workers add reconcile/finalize in their own type. */
export interface ControllerSpec<T extends KubeObject = KubeObject> {
  /** Queue name and metric label; lowercase letters, digits and dashes. */
  name: string;
  for: ResourceSpec;
  selector?: { labels?: string; fields?: string; namespace?: string };
  /** Which updates enqueue. @defaultValue ['generation'] (creation and deletion always do) */
  predicates?: readonly PredicateSpec[];
  /** Child resources whose controller ownerReference points at our kind: their events enqueue the owner. */
  owns?: readonly ResourceSpec[];
  watches?: readonly WatchSpec[];
  /** The finalizer the workers add and remove. */
  finalizer?: string;
  /** Type witness only; never set. */
  readonly __object?: T;
}

/** Returns the definition unchanged, typed; the module's default export is what `--controller` loads. */
export function defineController<C extends ControllerSpec>(definition: C): C {
  return definition;
}

/** A `changed` projection over chosen keys of a ConfigMap's or Secret's `data`. */
export function dataKeys(keys: readonly string[]): (object: KubeObject) => unknown {
  return (object) => {
    const data = (object.data ?? {}) as Record<string, unknown>;
    return keys.map((key) => [key, data[key] ?? null]);
  };
}

/** The `apiVersion` ownerReferences use for a resource. */
export function resourceApiVersion(resource: ResourceSpec): string {
  return resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
}

const CONTROLLER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks a loaded definition; throws InvalidArgumentError listing every problem, naming the field. */
export function validateControllerSpec(spec: unknown): ControllerSpec {
  const problems: string[] = [];
  if (spec === null || typeof spec !== 'object') {
    throw new InvalidArgumentError('controller definition must be an object made with defineController({...})');
  }
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
      validateResourceRef({ group: ref.group, version: ref.version, resource: ref.plural });
    } catch (error) {
      problems.push(`${path}: ${(error as Error).message}`);
    }
  };
  checkResource('for', c.for);
  for (const [i, p] of (c.predicates ?? []).entries()) {
    if (typeof p === 'string') {
      if (!(BUILT_IN_PREDICATES as readonly string[]).includes(p)) {
        problems.push(`predicates[${i}]: unknown predicate "${p}"; built-ins are ${BUILT_IN_PREDICATES.join(', ')}`);
      }
    } else if (p === null || typeof p !== 'object' || typeof p.name !== 'string' || !/^[a-zA-Z0-9_-]+$/.test(p.name)) {
      problems.push(`predicates[${i}]: a user predicate needs a name of letters, digits, '-' or '_'`);
    } else if (typeof (p as { changed?: unknown }).changed !== 'function' && typeof (p as { test?: unknown }).test !== 'function') {
      problems.push(`predicates[${i}] (${p.name}): needs a changed(meta) or test(previous, meta) function`);
    }
  }
  for (const [i, r] of (c.owns ?? []).entries()) checkResource(`owns[${i}]`, r);
  for (const [i, w] of (c.watches ?? []).entries()) {
    checkResource(`watches[${i}].resource`, w?.resource);
    if (typeof w?.map !== 'function') problems.push(`watches[${i}].map: must be a function returning [{ namespace, name }]`);
    if (w?.changed !== undefined && typeof w.changed !== 'function') problems.push(`watches[${i}].changed: must be a function`);
  }
  if (c.finalizer !== undefined && (typeof c.finalizer !== 'string' || !/^[a-z0-9.-]+\/[A-Za-z0-9._-]+$/.test(c.finalizer))) {
    problems.push('finalizer: must be a qualified name such as example.com/cleanup');
  }
  if (problems.length > 0) {
    throw new InvalidArgumentError(`invalid controller definition:\n  ${problems.join('\n  ')}`);
  }
  return c as ControllerSpec;
}
