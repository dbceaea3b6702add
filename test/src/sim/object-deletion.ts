// DELETE as kube-apiserver runs it: preconditions, the finalizers a propagation policy adds (foregroundDeletion, orphan), a deletionTimestamp while finalizers remain, removal when none do.

import { finalizersOf, isNamespaceType, meta, type ObjectApi, type WriteContext } from './objects.ts';
import { deepEqual } from './patch.ts';
import type { ResourceType } from './resources.ts';
import { ApiError, type JsonObject } from './status.ts';
import { freeze, objectKey, type StoredObject } from './store.ts';

export type PropagationPolicy = 'Foreground' | 'Background' | 'Orphan';

/** The finalizers kube-apiserver adds for foreground and orphan deletion, which the garbage collector removes. */
export const FOREGROUND_FINALIZER = 'foregroundDeletion';
export const ORPHAN_FINALIZER = 'orphan';

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: PropagationPolicy;
  dryRun: boolean;
}

export interface DeleteResult {
  object: StoredObject;
  /** False when finalizers keep the object: it now carries a deletionTimestamp. */
  deleted: boolean;
}

/**
 * DELETE: preconditions, then the finalizers the propagation policy asks for (foregroundDeletion, orphan);
 * an object with finalizers (and a namespace, always) gets a deletionTimestamp, any other goes at once.
 */
export function deleteObject(
  api: ObjectApi,
  t: ResourceType,
  namespace: string,
  name: string,
  options: DeleteOptions,
  ctx: WriteContext,
): DeleteResult {
  const current = api.get(t, namespace, name);
  checkPreconditions(t, name, current, options);
  const m = meta(current);
  const finalizers = deletionFinalizers(finalizersOf(current), options.propagationPolicy);
  const key = objectKey(namespace, name);
  if (m.deletionTimestamp !== undefined) {
    if (deepEqual(finalizers, finalizersOf(current))) return { object: current, deleted: false };
    const next: JsonObject = { ...current, metadata: { ...m, finalizers } };
    return { object: api.finishUpdate(t, key, current, next, ctx, undefined, undefined), deleted: false };
  }
  if (finalizers.length === 0 && !isNamespaceType(t)) return { object: api.remove(t, key, current, options.dryRun), deleted: true };
  const nm: JsonObject = { ...m, deletionTimestamp: api.timestamp(), deletionGracePeriodSeconds: 0 };
  if (finalizers.length > 0) nm.finalizers = finalizers;
  if (t.tracksGeneration) nm.generation = Number(m.generation ?? 0) + 1;
  const next: JsonObject = { ...current, metadata: nm };
  if (isNamespaceType(t)) next.status = { ...((current.status as JsonObject | undefined) ?? {}), phase: 'Terminating' };
  // Marking an object deleted is not an update anyone owns fields by.
  if (options.dryRun) return { object: freeze({ ...next, metadata: { ...nm, resourceVersion: m.resourceVersion } }), deleted: false };
  return { object: api.write(t, key, current, next, ctx), deleted: false };
}

function checkPreconditions(t: ResourceType, name: string, current: StoredObject, options: DeleteOptions): void {
  const m = meta(current);
  const pre = options.preconditions;
  const details = { name, group: t.group, kind: t.plural };
  if (pre?.uid !== undefined && pre.uid !== m.uid) {
    throw new ApiError(
      409,
      'Conflict',
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(m.uid)}`,
      details,
    );
  }
  if (pre?.resourceVersion !== undefined && pre.resourceVersion !== m.resourceVersion) {
    throw new ApiError(
      409,
      'Conflict',
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(m.resourceVersion)}`,
      details,
    );
  }
}

/**
 * The finalizers an object carries once deleted with this policy (kube-apiserver's
 * deletionFinalizersForGarbageCollection): without a policy, a foreground or orphan finalizer already there stays.
 */
function deletionFinalizers(current: string[], policy: PropagationPolicy | undefined): string[] {
  const others = current.filter((f) => f !== FOREGROUND_FINALIZER && f !== ORPHAN_FINALIZER);
  const orphan = policy === 'Orphan' || (policy === undefined && current.includes(ORPHAN_FINALIZER));
  const foreground = policy === 'Foreground' || (policy === undefined && current.includes(FOREGROUND_FINALIZER));
  const next = [...others, ...(orphan ? [ORPHAN_FINALIZER] : []), ...(foreground ? [FOREGROUND_FINALIZER] : [])];
  return new Set(next).size === new Set(current).size && next.every((f) => current.includes(f)) ? current : next;
}
