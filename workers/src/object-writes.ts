// The writes a run makes to the object it reconciles: our finalizer added and removed by guarded JSON patches, and the collected status, each carrying the resourceVersion the run read.
import {
  ConflictError,
  FieldConflictError,
  isConflict,
  isNotFound,
  type JsonPatchOperation,
  KubeApiError,
  type KubeClient,
  type KubeObject,
  type ObjectKey,
  type StoredObject,
  statusCodeOf,
} from '@conveyor/shared';
import { statusToApply } from './status-apply.ts';
import type { StatusCollector } from './status-patch.ts';

/** The resourceVersion guard: on the real API server a patch that sets a stale resourceVersion fails with 409. */
function resourceVersionGuard(object: StoredObject): JsonPatchOperation[] {
  const rv = object.metadata.resourceVersion;
  return rv === undefined ? [] : [{ op: 'replace', path: '/metadata/resourceVersion', value: rv }];
}

export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  key: ObjectKey,
  object: StoredObject<T>,
  finalizer: string,
): Promise<StoredObject<T>> {
  const existing = object.metadata.finalizers;
  const operations: JsonPatchOperation[] =
    existing === undefined
      ? [...resourceVersionGuard(object), { op: 'add', path: '/metadata/finalizers', value: [finalizer] }]
      : [
          ...resourceVersionGuard(object),
          { op: 'test', path: '/metadata/finalizers', value: existing },
          { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
        ];
  return await guardedPatch(() => client.patch<T>(key, { type: 'json', operations }), `adding finalizer ${finalizer}`);
}

export async function removeFinalizer(client: KubeClient, key: ObjectKey, object: StoredObject, finalizer: string): Promise<void> {
  const index = (object.metadata.finalizers ?? []).indexOf(finalizer);
  const path = `/metadata/finalizers/${index}`;
  const operations: JsonPatchOperation[] = [
    ...resourceVersionGuard(object),
    { op: 'test', path, value: finalizer },
    { op: 'remove', path },
  ];
  try {
    await guardedPatch(() => client.patch(key, { type: 'json', operations }), `removing finalizer ${finalizer}`);
  } catch (error) {
    // Gone already: the last finalizer went and the object with it. Nothing left to remove.
    if (isNotFound(error)) return;
    throw error;
  }
}

export async function writeStatus(client: KubeClient, key: ObjectKey, object: StoredObject, status: StatusCollector): Promise<void> {
  const patch = status.pendingFor(object.status);
  if (patch === undefined) return;
  const rv = object.metadata.resourceVersion;
  const body = { metadata: rv === undefined ? {} : { resourceVersion: rv }, status: patch };
  await guardedPatch(() => client.patch(key, { type: 'merge', body }, { subresource: 'status' }), 'writing status', false);
}

/**
 * Writes the collected status by server-side apply to /status, with the resourceVersion read in the
 * configuration: the server refuses it with 409 if the object changed since, so a stale run never
 * writes status computed from an old object. A field conflict with our own manager name under another
 * operation (status written by merge patch before this controller applied it) is ours to take over.
 */
export async function applyStatus(client: KubeClient, manager: string, object: StoredObject, status: StatusCollector): Promise<void> {
  const changes = status.collected();
  if (changes === undefined) return;
  const applied = statusToApply(object, manager, changes);
  if (applied === undefined) return;
  const { name, namespace, resourceVersion } = object.metadata;
  const configuration = {
    apiVersion: object.apiVersion ?? '',
    kind: object.kind ?? '',
    metadata: { name, ...(namespace === undefined ? {} : { namespace }), resourceVersion },
    status: applied,
  };
  const write = (force: boolean) => client.apply(configuration, { subresource: 'status', force });
  await guardedPatch(
    async () => {
      try {
        return await write(false);
      } catch (error) {
        if (error instanceof FieldConflictError && error.conflicts.every((c) => c.manager === manager)) return await write(true);
        throw error;
      }
    },
    'applying status',
    false,
  );
}

/**
 * A 409 means the object changed under us: a retry re-reads it. So does a 422 of one of our JSON
 * patches, whose only way to be invalid is a failed `test` op (kube-apiserver answers those 422).
 */
async function guardedPatch<R>(write: () => Promise<R>, what: string, jsonPatch = true): Promise<R> {
  try {
    return await write();
  } catch (error) {
    if (
      (isConflict(error) && !(error instanceof FieldConflictError)) ||
      (jsonPatch && statusCodeOf(error) === 422 && error instanceof KubeApiError)
    ) {
      throw new ConflictError(`${what}: the object changed since it was read (${statusCodeOf(error)}); retrying re-reads it`, {
        cause: error,
      });
    }
    throw error;
  }
}
