// Maps an event on a watched object to the keys of the controller's resource it should enqueue: self, owner, or a user map.
import type { KubeObject, ObjectMeta, ResourceSpec, TargetRef, WatchIndex, WatchSpec } from '@conveyor/shared';
import type { TargetIndex } from './target-index.ts';

/**
 * The owner an owned child points at: the ownerReference marked `controller: true` whose group and
 * kind are the parent's (any version: ownerReferences may carry an older one). An owner of a
 * cluster-scoped kind has no namespace; otherwise owners share the child's namespace.
 */
export function controllerOwner(meta: ObjectMeta, parent: ResourceSpec & { kind: string }): TargetRef | undefined {
  for (const ref of meta.ownerReferences ?? []) {
    if (ref.controller !== true || ref.kind !== parent.kind) continue;
    const slash = ref.apiVersion.lastIndexOf('/');
    const group = slash === -1 ? '' : ref.apiVersion.slice(0, slash);
    if (group !== parent.group) continue;
    return { namespace: parent.namespaced === false ? '' : (meta.namespace ?? ''), name: ref.name };
  }
  return undefined;
}

/** An index of the controller's own objects, kept by its own stream, that a `watches` entry maps through. */
export interface IndexedTargets {
  index: TargetIndex;
  /** The key (`namespace/name`) of a row of the controller's own objects. */
  keyAt(row: number): string | undefined;
  /** Whether the watched resource lives in namespaces (then only objects of the same namespace can name it). */
  namespaced: boolean;
}

/** What the controller's own stream indexes for one `watches` entry: the watched object an object names, as an index value. */
export interface SelfIndex {
  index: TargetIndex;
  named(meta: ObjectMeta): string | undefined;
}

/** The index value of a watched object's name: `namespace/name`, or `/name` for a cluster-scoped one. */
export function indexValue(namespaced: boolean, namespace: string, name: string): string {
  return namespaced ? `${namespace}/${name}` : `/${name}`;
}

/** How the controller's own stream reads a `watches` index from an object's metadata. */
export function selfIndex(index: TargetIndex, by: WatchIndex, namespaced: boolean): SelfIndex {
  const read = 'label' in by ? (meta: ObjectMeta) => meta.labels?.[by.label] : (meta: ObjectMeta) => meta.annotations?.[by.annotation];
  return {
    index,
    named: (meta) => {
      const named = read(meta);
      return named === undefined || named === '' ? undefined : indexValue(namespaced, meta.namespace ?? '', named);
    },
  };
}

/** The controller's objects that name `meta`'s object through an index. */
export function indexedTargets(indexed: IndexedTargets, meta: ObjectMeta): TargetRef[] {
  const targets: TargetRef[] = [];
  for (const row of indexed.index.rows(indexValue(indexed.namespaced, meta.namespace ?? '', meta.name ?? ''))) {
    const key = indexed.keyAt(row);
    if (key === undefined) continue;
    const slash = key.indexOf('/');
    targets.push({ namespace: key.slice(0, slash), name: key.slice(slash + 1) });
  }
  return targets;
}

/** The targets of a `watches` entry for one object; a map function that throws yields none and the error. */
export function mappedTargets(watch: WatchSpec, object: KubeObject): { targets: TargetRef[]; error?: unknown } {
  try {
    if (watch.map === undefined) return { targets: [] };
    const out = watch.map(object);
    if (!Array.isArray(out)) return { targets: [], error: new TypeError('map did not return an array') };
    const namespace = object.metadata?.namespace ?? '';
    const targets: TargetRef[] = [];
    for (const t of out as unknown[]) {
      if (t === null || typeof t !== 'object' || typeof (t as TargetRef).name !== 'string') continue;
      const ref = t as TargetRef;
      targets.push({ namespace: ref.namespace ?? namespace, name: ref.name });
    }
    return { targets };
  } catch (error) {
    return { targets: [], error };
  }
}
