// The garbage collector of kube-controller-manager: dependents of a deleted owner deleted (background), owners in foreground deletion waiting for their blocking dependents, orphaned dependents released.
import type { WorkQueue } from './controller-manager.ts';
import { deleteObject, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, type PropagationPolicy } from './object-deletion.ts';
import { finalizersOf, internalWrite, meta, type ObjectApi } from './objects.ts';
import { isObject, PATCH_TYPES } from './patch.ts';
import type { ResourceType } from './resources.ts';
import type { JsonObject } from './status.ts';
import type { Store, StoredObject, StoreEvent } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';

/** The manager name the collector's writes are recorded under (its User-Agent's program). */
const MANAGER = 'kube-controller-manager';
const SEP = '\u0000';

interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  blockOwnerDeletion?: boolean;
}

function ownerReferences(obj: StoredObject | JsonObject): OwnerReference[] {
  const refs = meta(obj).ownerReferences;
  return Array.isArray(refs) ? (refs.filter((r) => isObject(r) && typeof r.uid === 'string') as unknown as OwnerReference[]) : [];
}

function keyOf(obj: StoredObject): string {
  const m = meta(obj);
  return m.namespace === undefined || m.namespace === '' ? String(m.name) : `${String(m.namespace)}/${String(m.name)}`;
}

/**
 * Keeps the owner→dependents graph from every change and acts as kube-controller-manager's garbage
 * collector does:
 * - a dependent whose owners are all gone (or being deleted in the foreground) is deleted, with the
 *   propagation its own finalizers ask for; one that keeps a live owner only loses the references to the others;
 * - an owner with the `foregroundDeletion` finalizer has its dependents deleted, and loses the finalizer once
 *   no dependent with `blockOwnerDeletion: true` is left;
 * - an owner with the `orphan` finalizer has its references removed from its dependents, then loses the finalizer.
 * An owner reference to a kind the server does not serve is left alone, as the real collector can only retry it.
 */
export class GarbageCollector {
  private readonly store: Store;
  private readonly types: TypeRegistry;
  private readonly objects: ObjectApi;
  private readonly queue: WorkQueue;
  private readonly dependents = new Map<string, Set<string>>();
  private readonly owners = new Map<string, string[]>();
  private readonly ctx = internalWrite(MANAGER);

  constructor(store: Store, types: TypeRegistry, objects: ObjectApi, queue: WorkQueue) {
    this.store = store;
    this.types = types;
    this.objects = objects;
    this.queue = queue;
  }

  observe(event: StoreEvent): void {
    const id = `${event.storageKey}${SEP}${keyOf(event.object)}`;
    const uid = String(meta(event.object).uid ?? '');
    const before = this.owners.get(id) ?? [];
    if (event.type === 'DELETED') {
      this.link(id, before, []);
      for (const dependent of this.dependents.get(uid) ?? []) this.attempt(dependent);
      for (const ref of ownerReferences(event.object)) {
        const owner = this.locate(ref, String(meta(event.object).namespace ?? ''));
        if (owner !== undefined) this.foreground(`${owner.t.storageKey}${SEP}${owner.key}`);
      }
      return;
    }
    const uids = ownerReferences(event.object).map((r) => r.uid);
    this.link(id, before, uids);
    if (uids.some((u) => !before.includes(u))) this.attempt(id);
    const finalizers = finalizersOf(event.object);
    if (meta(event.object).deletionTimestamp !== undefined) {
      if (finalizers.includes(FOREGROUND_FINALIZER)) this.foreground(id);
      if (finalizers.includes(ORPHAN_FINALIZER)) this.queue.enqueue(`gc-orphan${SEP}${id}`, () => this.orphanDependents(id));
    }
  }

  private link(id: string, before: string[], after: string[]): void {
    for (const uid of before) {
      const set = this.dependents.get(uid);
      set?.delete(id);
      if (set?.size === 0) this.dependents.delete(uid);
    }
    for (const uid of after) {
      let set = this.dependents.get(uid);
      if (set === undefined) {
        set = new Set();
        this.dependents.set(uid, set);
      }
      set.add(id);
    }
    if (after.length === 0) this.owners.delete(id);
    else this.owners.set(id, after);
  }

  private attempt(id: string): void {
    this.queue.enqueue(`gc-attempt${SEP}${id}`, () => this.attemptToDelete(id));
  }

  private foreground(id: string): void {
    this.queue.enqueue(`gc-foreground${SEP}${id}`, () => this.deleteDependentsFirst(id));
  }

  private lookup(id: string): { t: ResourceType; obj: StoredObject } | undefined {
    const [storageKey = '', key = ''] = id.split(SEP);
    const obj = this.store.bucket(storageKey).get(key);
    const t = this.types.all().find((x) => x.storageKey === storageKey);
    return obj === undefined || t === undefined ? undefined : { t, obj };
  }

  /** Where the object a reference names would be, or undefined when the server does not serve its kind. */
  private locate(ref: OwnerReference, namespace: string): { t: ResourceType; key: string } | undefined {
    const group = ref.apiVersion.includes('/') ? ref.apiVersion.slice(0, ref.apiVersion.indexOf('/')) : '';
    const t = this.types.all().find((x) => x.group === group && x.kind === ref.kind && !x.createOnly);
    if (t === undefined) return undefined;
    return { t, key: t.namespaced ? `${namespace}/${ref.name}` : ref.name };
  }

  /** attemptToDeleteItem: what becomes of a dependent, given the state of its owners. */
  private attemptToDelete(id: string): void {
    const found = this.lookup(id);
    if (found === undefined) return;
    const { t, obj } = found;
    const m = meta(obj);
    if (m.deletionTimestamp !== undefined) {
      if (finalizersOf(obj).includes(FOREGROUND_FINALIZER)) this.foreground(id);
      return;
    }
    const refs = ownerReferences(obj);
    if (refs.length === 0) return;
    const namespace = String(m.namespace ?? '');
    const solid: OwnerReference[] = [];
    const gone: OwnerReference[] = [];
    const waiting: OwnerReference[] = [];
    for (const ref of refs) {
      const where = this.locate(ref, namespace);
      if (where === undefined) solid.push(ref);
      else if (where.t.namespaced && namespace === '') gone.push(ref);
      else {
        const owner = this.store.bucket(where.t.storageKey).get(where.key);
        if (owner === undefined || meta(owner).uid !== ref.uid) gone.push(ref);
        else if (meta(owner).deletionTimestamp !== undefined && finalizersOf(owner).includes(FOREGROUND_FINALIZER)) waiting.push(ref);
        else solid.push(ref);
      }
    }
    if (solid.length > 0) {
      if (gone.length + waiting.length > 0) this.removeReferences(t, obj, new Set([...gone, ...waiting].map((r) => r.uid)));
      return;
    }
    const finalizers = finalizersOf(obj);
    let policy: PropagationPolicy = 'Background';
    if (waiting.length > 0 && (this.dependents.get(String(m.uid))?.size ?? 0) > 0) policy = 'Foreground';
    else if (finalizers.includes(ORPHAN_FINALIZER)) policy = 'Orphan';
    else if (finalizers.includes(FOREGROUND_FINALIZER)) policy = 'Foreground';
    deleteObject(
      this.objects,
      t,
      namespace,
      String(m.name),
      { preconditions: { uid: String(m.uid) }, propagationPolicy: policy, dryRun: false },
      this.ctx,
    );
  }

  /** processDeletingDependentsItem: delete the dependents; drop the finalizer once none blocks. */
  private deleteDependentsFirst(id: string): void {
    const found = this.lookup(id);
    if (found === undefined) return;
    const { t, obj } = found;
    if (meta(obj).deletionTimestamp === undefined || !finalizersOf(obj).includes(FOREGROUND_FINALIZER)) return;
    const uid = String(meta(obj).uid);
    const live = [...(this.dependents.get(uid) ?? [])].map((d) => [d, this.lookup(d)] as const).filter(([, x]) => x !== undefined);
    const blocking = live.filter(([, x]) => ownerReferences(x?.obj ?? {}).some((r) => r.uid === uid && r.blockOwnerDeletion === true));
    if (blocking.length === 0) {
      this.removeFinalizer(t, obj, FOREGROUND_FINALIZER);
      return;
    }
    for (const [dependent] of live) this.attempt(dependent);
  }

  /** The orphan finalizer: every dependent forgets this owner, then the owner may go. */
  private orphanDependents(id: string): void {
    const found = this.lookup(id);
    if (found === undefined) return;
    const { t, obj } = found;
    if (meta(obj).deletionTimestamp === undefined || !finalizersOf(obj).includes(ORPHAN_FINALIZER)) return;
    const uid = String(meta(obj).uid);
    for (const dependent of [...(this.dependents.get(uid) ?? [])]) {
      const d = this.lookup(dependent);
      if (d !== undefined) this.removeReferences(d.t, d.obj, new Set([uid]));
    }
    this.removeFinalizer(t, obj, ORPHAN_FINALIZER);
  }

  private removeReferences(t: ResourceType, obj: StoredObject, uids: Set<string>): void {
    const kept = (meta(obj).ownerReferences as JsonObject[]).filter((r) => !uids.has(String(r.uid)));
    const op =
      kept.length === 0
        ? { op: 'remove', path: '/metadata/ownerReferences' }
        : { op: 'replace', path: '/metadata/ownerReferences', value: kept };
    this.patch(t, obj, [{ op: 'test', path: '/metadata/uid', value: meta(obj).uid }, op]);
  }

  private removeFinalizer(t: ResourceType, obj: StoredObject, finalizer: string): void {
    const kept = finalizersOf(obj).filter((f) => f !== finalizer);
    this.patch(t, obj, [
      { op: 'test', path: '/metadata/resourceVersion', value: meta(obj).resourceVersion },
      { op: 'replace', path: '/metadata/finalizers', value: kept },
    ]);
  }

  private patch(t: ResourceType, obj: StoredObject, operations: unknown[]): void {
    const m = meta(obj);
    this.objects.patch(t, String(m.namespace ?? ''), String(m.name), PATCH_TYPES.json, operations, this.ctx, undefined);
  }
}
