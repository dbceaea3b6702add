// The namespace controller of kube-controller-manager: a namespace being deleted has its contents deleted, then loses its `kubernetes` finalizer and goes.
import type { WorkQueue } from './controller-manager.ts';
import { deleteObject } from './object-deletion.ts';
import { internalWrite, meta, type ObjectApi } from './objects.ts';
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';
import { ApiError, type JsonObject } from './status.ts';
import type { Store, StoreEvent } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';

const NAMESPACES = '/namespaces';

/**
 * Watches namespaces and what is in them. A namespace with a deletionTimestamp has every object in it deleted
 * (background propagation, their finalizers honoured); once nothing is left, `kubernetes` is removed from its
 * spec.finalizers and, with no finalizers left at all, the namespace is removed.
 */
export class NamespaceController {
  private readonly store: Store;
  private readonly types: TypeRegistry;
  private readonly objects: ObjectApi;
  private readonly queue: WorkQueue;
  private readonly ctx = internalWrite('kube-controller-manager');

  constructor(store: Store, types: TypeRegistry, objects: ObjectApi, queue: WorkQueue) {
    this.store = store;
    this.types = types;
    this.objects = objects;
    this.queue = queue;
  }

  observe(event: StoreEvent): void {
    if (event.storageKey === NAMESPACES) {
      if (event.type !== 'DELETED' && meta(event.object).deletionTimestamp !== undefined) this.enqueue(String(meta(event.object).name));
      return;
    }
    if (event.type !== 'DELETED') return;
    const namespace = meta(event.object).namespace;
    if (typeof namespace !== 'string' || namespace === '') return;
    const ns = this.store.bucket(NAMESPACES).get(namespace);
    if (ns !== undefined && meta(ns).deletionTimestamp !== undefined) this.enqueue(namespace);
  }

  private enqueue(name: string): void {
    this.queue.enqueue(`namespace\u0000${name}`, () => this.sync(name));
  }

  private sync(name: string): void {
    const ns = this.store.bucket(NAMESPACES).get(name);
    if (ns === undefined || meta(ns).deletionTimestamp === undefined) return;
    for (const t of this.contentTypes()) {
      for (const [, obj] of [...this.store.bucket(t.storageKey).scan(`${name}/`, undefined)]) {
        if (meta(obj).deletionTimestamp !== undefined) continue;
        try {
          deleteObject(this.objects, t, name, String(meta(obj).name), { dryRun: false }, this.ctx);
        } catch (error) {
          if (!(error instanceof ApiError && error.code === 404)) throw error;
        }
      }
    }
    if (this.contentTypes().some((t) => !this.store.bucket(t.storageKey).scan(`${name}/`, undefined).next().done)) return;
    const nsType = this.types.find('', 'v1', 'namespaces') as ResourceType;
    const spec = isObject(ns.spec) ? ns.spec : {};
    const finalizers = Array.isArray(spec.finalizers) ? (spec.finalizers as string[]) : [];
    const next: JsonObject = { ...ns, spec: { ...spec, finalizers: finalizers.filter((f) => f !== 'kubernetes') } };
    this.objects.finishUpdate(nsType, name, ns, next, this.ctx, 'finalize');
  }

  /** One type per stored namespaced resource (the versions of a CRD share their objects). */
  private contentTypes(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.types.all()) if (t.namespaced && !t.createOnly && !seen.has(t.storageKey)) seen.set(t.storageKey, t);
    return [...seen.values()];
  }
}
