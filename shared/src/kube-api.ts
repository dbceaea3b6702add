// The Kubernetes client a reconcile uses, as types only (patches, lists, the client interface), so workers and Lambda agree on it.
import type { ApiConstructor, ApiType } from '@kubernetes/client-node';
import type { KubeObject, ObjectMeta } from './controller.ts';
import type { ObjectKey, ResourceRef } from './object-key.ts';

/** An object as the API server returns it: metadata with name and resourceVersion always present. */
export type StoredObject<T extends KubeObject = KubeObject> = T & {
  metadata: ObjectMeta & { name: string; resourceVersion: string };
};

/** An object to create: the server fills uid, resourceVersion, generation. */
export type NewObject<T extends KubeObject = KubeObject> = Omit<T, 'metadata'> & {
  metadata: Omit<ObjectMeta, 'uid' | 'resourceVersion' | 'generation' | 'deletionTimestamp'> & { name: string };
};

/** RFC 6902 operations; `test` makes a patch fail instead of acting on a changed object. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

export type Patch =
  | { type: 'json'; operations: readonly JsonPatchOperation[] }
  /** RFC 7386 merge patch; put `metadata.resourceVersion` in it to make it conditional (409 when stale). */
  | { type: 'merge'; body: Record<string, unknown> };

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

/**
 * The Kubernetes client a reconcile gets. Every call draws from the cluster-wide API budget.
 * Failures throw `KubeApiError` (status code, reason); a 429 throws a ThrottledError.
 */
export interface KubeClient {
  get<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T>>;
  /** Like `get`, but resolves undefined on 404. */
  find<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T> | undefined>;
  list<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace: string, options?: ListOptions): Promise<ObjectList<StoredObject<T>>>;
  create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: NewObject<T>): Promise<StoredObject<T>>;
  patch<T extends KubeObject = KubeObject>(key: ObjectKey, patch: Patch, options?: { subresource?: 'status' }): Promise<StoredObject<T>>;
  /** Deletes with a `resourceVersion` precondition when given. Resolves false when the object was already gone. */
  delete(key: ObjectKey, options?: { resourceVersion?: string }): Promise<boolean>;
  /**
   * One of client-node's typed APIs (`CoreV1Api`, `AppsV1Api`, …) on the same connection, each call
   * also paid from the budget. Its failures are client-node's ApiException.
   */
  api<T extends ApiType>(type: ApiConstructor<T>): T;
}

/** The key of an object of a given resource. */
export function keyOf(ref: ResourceRef, object: { metadata: { name: string; namespace?: string | undefined } }): ObjectKey {
  return {
    group: ref.group,
    version: ref.version,
    resource: ref.resource,
    namespace: object.metadata.namespace ?? '',
    name: object.metadata.name,
  };
}
