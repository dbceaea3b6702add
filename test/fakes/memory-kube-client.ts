// An in-memory KubeClient with the API server's write rules (resourceVersion preconditions, JSON-patch `test`, finalizers, status subresource), for fast tests of request processing.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  type ApplyObject,
  type ApplyOptions,
  applyMergePatch,
  formatKey,
  KubeApiError,
  type KubeClient,
  type KubeObject,
  keyOf,
  type ListOptions,
  type NewObject,
  type ObjectKey,
  type ObjectList,
  type Patch,
  type ResourceRef,
  type StoredObject,
  UnsupportedError,
  unlessNotFound,
} from '@conveyor/shared';
import fjp from 'fast-json-patch';

export interface RecordedCall {
  verb: 'get' | 'list' | 'create' | 'patch' | 'apply' | 'delete';
  key: string;
  subresource?: string;
}

/**
 * Holds objects in a Map. Like kube-apiserver: a patch whose result carries a resourceVersion other
 * than the stored one fails with 409; a failed `test` op with 422; `generation` moves only when
 * something outside metadata and status changes or deletion starts; an object with finalizers is
 * only marked for deletion; writes to the main resource ignore `status`.
 *
 * Its `apply` is a sketch of server-side apply, for tests of request processing only: the resource is
 * the lowercased kind plus `s`, the configuration merges over the object (objects by key, lists of
 * items with a `type` by type, anything else replaced), and there are no managers, conflicts or
 * removal of fields left out. Test what apply really does against the simulator.
 */
export class MemoryKubeClient implements KubeClient {
  readonly calls: RecordedCall[] = [];
  /** Runs before every call; throw from it to inject a fault. */
  beforeCall: (call: RecordedCall) => void = () => {};
  private readonly objects = new Map<string, StoredObject>();
  private revision = 100;

  writes(): RecordedCall[] {
    return this.calls.filter((c) => c.verb !== 'get' && c.verb !== 'list');
  }

  /** Stores an object directly, as if another client created it (no call is recorded). */
  seed<T extends KubeObject>(ref: ResourceRef, object: NewObject<T>): StoredObject<T> {
    const key = formatKey(keyOf(ref, object as { metadata: { name: string; namespace?: string } }));
    const stored = {
      ...structuredClone(object),
      metadata: { ...structuredClone(object.metadata), uid: randomUUID(), generation: 1, resourceVersion: this.nextRevision() },
    } as unknown as StoredObject<T>;
    this.objects.set(key, stored);
    return structuredClone(stored);
  }

  peek<T extends KubeObject = KubeObject>(key: ObjectKey): StoredObject<T> | undefined {
    const found = this.objects.get(formatKey(key));
    return found === undefined ? undefined : (structuredClone(found) as StoredObject<T>);
  }

  async get<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T>> {
    this.record({ verb: 'get', key: formatKey(key) });
    const found = this.peek<T>(key);
    if (found === undefined) throw notFound(key);
    return found;
  }

  find<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T> | undefined> {
    return unlessNotFound(this.get<T>(key));
  }

  async list<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    namespace: string,
    _options?: ListOptions,
  ): Promise<ObjectList<StoredObject<T>>> {
    const prefix = formatKey({ ...ref, namespace: namespace === '' ? 'x' : namespace, name: 'x' }).slice(0, -1);
    this.record({ verb: 'list', key: prefix });
    const items = [...this.objects.entries()]
      .filter(([k]) => namespace === '' || k.startsWith(prefix))
      .map(([, o]) => structuredClone(o) as StoredObject<T>);
    return { items, metadata: { resourceVersion: String(this.revision) } };
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: NewObject<T>): Promise<StoredObject<T>> {
    const key = keyOf(ref, object as { metadata: { name: string; namespace?: string } });
    this.record({ verb: 'create', key: formatKey(key) });
    if (this.objects.has(formatKey(key)))
      throw new KubeApiError({ statusCode: 409, reason: 'AlreadyExists', message: `${formatKey(key)} already exists` });
    return this.seed(ref, object);
  }

  async patch<T extends KubeObject = KubeObject>(
    key: ObjectKey,
    patch: Patch,
    options: { subresource?: 'status' } = {},
  ): Promise<StoredObject<T>> {
    this.record({ verb: 'patch', key: formatKey(key), ...(options.subresource === undefined ? {} : { subresource: options.subresource }) });
    return this.write<T>(key, patch, options);
  }

  private write<T extends KubeObject>(key: ObjectKey, patch: Patch, options: { subresource?: 'status' }): StoredObject<T> {
    const current = this.objects.get(formatKey(key));
    if (current === undefined) throw notFound(key);
    let patched: StoredObject;
    if (patch.type === 'json') {
      try {
        patched = fjp.applyPatch(structuredClone(current), structuredClone(patch.operations) as fjp.Operation[], true).newDocument;
      } catch (error) {
        throw new KubeApiError({
          statusCode: 422,
          reason: 'Invalid',
          message: `the JSON patch could not be applied: ${(error as Error).message}`,
        });
      }
    } else {
      patched = applyMergePatch(current, patch.body) as StoredObject;
    }
    if (patched.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new KubeApiError({
        statusCode: 409,
        reason: 'Conflict',
        message: `Operation cannot be fulfilled on ${formatKey(key)}: the object has been modified`,
      });
    }
    const next: StoredObject =
      options.subresource === 'status'
        ? { ...structuredClone(current), status: patched.status }
        : { ...patched, status: structuredClone(current.status) };
    if (options.subresource !== 'status') {
      const added = (next.metadata.finalizers ?? []).filter((f) => !(current.metadata.finalizers ?? []).includes(f));
      if (current.metadata.deletionTimestamp !== undefined && added.length > 0) {
        throw new KubeApiError({
          statusCode: 422,
          reason: 'Forbidden',
          message: `no new finalizers can be added if the object is being deleted, found new finalizers ${added}`,
        });
      }
      const { metadata: _a, status: _b, ...specBefore } = current;
      const { metadata: _c, status: _d, ...specAfter } = next;
      if (!isDeepStrictEqual(specBefore, specAfter)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    }
    if (isDeepStrictEqual(next, current)) return structuredClone(current) as StoredObject<T>;
    next.metadata.resourceVersion = this.nextRevision();
    if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
      this.objects.delete(formatKey(key));
    } else {
      this.objects.set(formatKey(key), next);
    }
    return structuredClone(next) as StoredObject<T>;
  }

  async apply<T extends KubeObject = KubeObject>(object: ApplyObject<T>, options: ApplyOptions = {}): Promise<StoredObject<T>> {
    const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
    const ref = { group: group ?? '', version: version ?? '', plural: `${object.kind.toLowerCase()}s` };
    const key = keyOf(ref, object as { metadata: { name: string; namespace?: string } });
    this.record({ verb: 'apply', key: formatKey(key), ...(options.subresource === undefined ? {} : { subresource: options.subresource }) });
    const current = this.objects.get(formatKey(key));
    if (current === undefined) {
      if (options.subresource === 'status') throw notFound(key);
      const { status: _ignored, ...created } = structuredClone(object) as KubeObject;
      return this.seed(ref, created as NewObject<T>);
    }
    const rv = object.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) {
      throw new KubeApiError({ statusCode: 409, reason: 'Conflict', message: `Operation cannot be fulfilled on ${formatKey(key)}` });
    }
    const merged = applyLike(current, { ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion } });
    const body = options.subresource === 'status' ? { status: merged.status ?? null } : { ...merged, status: current.status ?? null };
    return this.write<T>(key, { type: 'merge', body: body as Record<string, unknown> }, options);
  }

  async delete(key: ObjectKey): Promise<boolean> {
    this.record({ verb: 'delete', key: formatKey(key) });
    const current = this.objects.get(formatKey(key));
    if (current === undefined) return false;
    if ((current.metadata.finalizers ?? []).length === 0) {
      this.objects.delete(formatKey(key));
      return true;
    }
    if (current.metadata.deletionTimestamp === undefined) {
      current.metadata.deletionTimestamp = new Date().toISOString();
      current.metadata.generation = (current.metadata.generation ?? 1) + 1;
      current.metadata.resourceVersion = this.nextRevision();
    }
    return true;
  }

  /** A view of this client whose calls reject with `signal.reason` once it aborted (this fake never hangs, so only calls started after it). */
  withSignal(signal: AbortSignal): KubeClient {
    const checked =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        signal.throwIfAborted();
        return await call(...args);
      };
    return {
      get: checked(this.get.bind(this)),
      find: checked(this.find.bind(this)),
      list: checked(this.list.bind(this)),
      create: checked(this.create.bind(this)),
      patch: checked(this.patch.bind(this)),
      apply: checked(this.apply.bind(this)),
      delete: checked(this.delete.bind(this)),
      api: this.api.bind(this),
      withSignal: (inner) => this.withSignal(AbortSignal.any([signal, inner])),
    } as KubeClient;
  }

  api(): never {
    throw new UnsupportedError('the in-memory client has no typed client-node APIs; test those against the simulator');
  }

  private record(call: RecordedCall): void {
    this.calls.push(call);
    this.beforeCall(call);
  }

  private nextRevision(): string {
    this.revision += 1;
    return String(this.revision);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const keyedByType = (v: unknown): v is Record<string, unknown>[] =>
  Array.isArray(v) && v.length > 0 && v.every((item) => isObject(item) && typeof item.type === 'string');

/** The configuration merged over the live object: objects by key, lists of items with a `type` by type, the rest replaced. */
function applyLike(live: unknown, applied: unknown): Record<string, unknown> {
  const merge = (a: unknown, b: unknown): unknown => {
    if (isObject(a) && isObject(b)) {
      const out: Record<string, unknown> = { ...a };
      for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
      return out;
    }
    if (keyedByType(a) && keyedByType(b)) {
      const out = [...a];
      for (const item of b) {
        const at = out.findIndex((x) => x.type === item.type);
        if (at === -1) out.push(item);
        else out[at] = item;
      }
      return out;
    }
    return structuredClone(b);
  };
  return merge(live, applied) as Record<string, unknown>;
}

function notFound(key: ObjectKey): KubeApiError {
  return new KubeApiError({ statusCode: 404, reason: 'NotFound', message: `${formatKey(key)} not found` });
}
