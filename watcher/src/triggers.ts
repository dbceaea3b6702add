// Maps an event on a watched object to the keys of the controller's resource it should enqueue: self, owner, or a user map.
import type { KubeObject, ObjectMeta, ResourceSpec, TargetRef, WatchSpec } from '@conveyor/shared';

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

/** The targets of a `watches` entry for one object; a map function that throws yields none and the error. */
export function mappedTargets(watch: WatchSpec, object: KubeObject): { targets: TargetRef[]; error?: unknown } {
  try {
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
