// Kubernetes objects and the two faces of the one API client, as types: KubeClient (objects, for reconciles) and KubeTransport (raw HTTP, for list+watch and Leases).
import type { ApiConstructor, ApiType } from '@kubernetes/client-node';
import type { ObjectKey, ResourceRef } from '../object-key.ts';

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

/**
 * A server-side apply configuration: the fields this manager has an opinion on, with apiVersion, kind
 * and metadata.name (and namespace) saying which object. Fields it applied before and leaves out are
 * removed unless another manager owns them. Put `metadata.resourceVersion` in it to make the apply
 * conditional: the server answers 409 if the object changed since that version.
 */
export type ApplyObject<T extends KubeObject = KubeObject> = Omit<T, 'apiVersion' | 'kind' | 'metadata'> & {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string };
};

export interface ApplyOptions {
  /** Take over fields other managers own instead of failing with FieldConflictError. @defaultValue false */
  force?: boolean;
  /** Apply to the status subresource: only `status` counts there. */
  subresource?: 'status';
}

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

/** The object a write goes to, as the watcher names it too (no version: any version is the same object). */
export interface WriteTarget {
  group: string;
  plural: string;
  namespace: string;
  name: string;
}

/**
 * Told about every write a client sends (create, patch, apply, delete): just before it goes out (after
 * the API budget let it), and when it answered, with the resourceVersion the answer carries. The
 * workers record their own writes this way so the watcher can tell their events from anyone else's.
 * An observer that fails must not fail the write: the client ignores its errors.
 */
export interface WriteObserver {
  beforeWrite(target: WriteTarget): Promise<void>;
  /** `resourceVersion` is undefined when the write failed (or answered without an object). */
  afterWrite(target: WriteTarget, resourceVersion: string | undefined): Promise<void>;
}

/** The subresources a client reads or writes apart from the object. */
export type Subresource = 'status' | 'scale';

/**
 * The Kubernetes client a reconcile gets. Every call draws from the cluster-wide API budget.
 * Failures throw `KubeApiError` (status code, reason, details; a 429 also carries Retry-After).
 */
export interface KubeClient {
  get<T extends KubeObject = KubeObject>(key: ObjectKey, options?: { subresource?: Subresource }): Promise<StoredObject<T>>;
  /** Like `get`, but resolves undefined on 404. */
  find<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T> | undefined>;
  list<T extends KubeObject = KubeObject>(ref: ResourceRef, namespace: string, options?: ListOptions): Promise<ObjectList<StoredObject<T>>>;
  create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: NewObject<T>): Promise<StoredObject<T>>;
  patch<T extends KubeObject = KubeObject>(key: ObjectKey, patch: Patch, options?: { subresource?: Subresource }): Promise<StoredObject<T>>;
  /**
   * Server-side apply (`application/apply-patch+yaml`) with this client's field manager: creates the
   * object when missing, merges by the schema (list-maps such as `status.conditions` by their keys)
   * and records which fields this manager owns. A change to a field another manager owns fails with
   * FieldConflictError (409, naming them) unless `force`.
   */
  apply<T extends KubeObject = KubeObject>(object: ApplyObject<T>, options?: ApplyOptions): Promise<StoredObject<T>>;
  /** Deletes with a `resourceVersion` precondition when given. Resolves false when the object was already gone. */
  delete(key: ObjectKey, options?: { resourceVersion?: string }): Promise<boolean>;
  /**
   * One of client-node's typed APIs (`CoreV1Api`, `AppsV1Api`, …) on the same connection, each call
   * also paid from the budget. Its failures are client-node's ApiException.
   */
  api<T extends ApiType>(type: ApiConstructor<T>): T;
  /**
   * The same client whose every request (typed `api(...)` clients included) is also aborted by `signal`.
   * A reconcile's `ctx.client` is already bound to `ctx.signal`; use this for a shorter deadline of your own.
   */
  withSignal(signal: AbortSignal): KubeClient;
}

/** Query parameters; undefined ones are left out. */
export type Query = Record<string, string | undefined>;

/** Raw HTTP to the API server: what the list+watch state machine and leader election need; tests may pass a fake. */
export interface KubeTransport {
  /** GET a JSON document. Throws KubeApiError on a non-2xx status. */
  getJson(path: string, query: Query, accept: string, signal?: AbortSignal): Promise<unknown>;
  /**
   * GET a stream of newline-separated JSON (a watch), calling `onLine` for each line; resolves
   * when the server ends the response, rejects on a non-2xx status or a broken connection. When
   * `onLine` returns a promise, nothing more is read off the connection until it resolves.
   */
  stream(
    path: string,
    query: Query,
    accept: string,
    signal: AbortSignal,
    onLine: (line: string) => Promise<void> | undefined | void,
  ): Promise<void>;
  /** Any other request with a JSON body (the Lease of leader election). */
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown>;
}
