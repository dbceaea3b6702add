// Object semantics of kube-apiserver: create, update, patch and delete with decoding, validation, resourceVersion, generation, finalizers, deletion propagation and managedFields.
import { randomUUID } from 'node:crypto';
import { builtinDefaults, encodeStringData } from './builtin-defaults.ts';
import { crdStorageKey, prepareCrdStatus, validateCrd } from './crd-definitions.ts';
import { eventCauses } from './event-validation.ts';
import { type DecodeContext, decodeObject } from './field-validation.ts';
import { type ManagedFieldsEntry, recordUpdate } from './managed-fields.ts';
import { validateObjectMeta } from './object-metadata.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, deepEqual, isObject, PATCH_TYPES } from './patch.ts';
import { apiVersionOf, type ResourceType, resourceTypesOfCrd } from './resources.ts';
import { validateAgainstSchema } from './schema-validate.ts';
import { ApiError, errors, type GroupResource, type JsonObject } from './status.ts';
import { freeze, objectKey, type Store, type StoredObject } from './store.ts';
import { DEDUCED, type Structural } from './structural-schema.ts';
import type { TypeRegistry } from './type-registry.ts';

export interface WriteContext extends DecodeContext {
  /** `fieldManager`, else derived from the User-Agent. */
  manager: string;
  dryRun: boolean;
}

/** The context of a write the simulator makes itself (seeding, controllers): no request, nothing to warn. */
export function internalWrite(manager: string): WriteContext {
  return { manager, dryRun: false, fieldValidation: 'Ignore', warnings: [] };
}

export type Subresource = 'status' | 'scale' | undefined;

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function groupResource(t: ResourceType): GroupResource {
  return { group: t.group, resource: t.plural };
}

export function meta(obj: StoredObject | JsonObject): JsonObject {
  return (obj.metadata ?? {}) as JsonObject;
}

export function finalizersOf(obj: StoredObject | JsonObject): string[] {
  const f = meta(obj).finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}

export function isNamespaceType(t: ResourceType): boolean {
  return t.group === '' && t.plural === 'namespaces';
}

/** Whether an object being deleted can go now: no finalizers left (for a namespace, none in its spec either). */
function readyToRemove(t: ResourceType, obj: JsonObject): boolean {
  if (meta(obj).deletionTimestamp === undefined || finalizersOf(obj).length > 0) return false;
  if (!isNamespaceType(t)) return true;
  const specFinalizers = isObject(obj.spec) ? obj.spec.finalizers : undefined;
  return !Array.isArray(specFinalizers) || specFinalizers.length === 0;
}

/** The object without the parts that do not count for generation: metadata, and status when it is a subresource. */
function specPart(t: ResourceType, obj: StoredObject | JsonObject): JsonObject {
  const { metadata: _m, status, ...rest } = obj;
  return t.statusSubresource ? rest : { ...rest, status };
}

function withoutResourceVersion(obj: StoredObject | JsonObject): JsonObject {
  const { resourceVersion: _rv, ...m } = meta(obj);
  return { ...obj, metadata: m };
}

const SERVER_SET_ON_CREATE = [
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'resourceVersion',
  'managedFields',
  'selfLink',
  'generation',
];
const KEPT_ON_UPDATE = [
  'name',
  'namespace',
  'uid',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'generation',
  'generateName',
];

export class ObjectApi {
  private readonly store: Store;
  private readonly types: TypeRegistry;
  private readonly now: () => number;

  constructor(store: Store, types: TypeRegistry, now: () => number) {
    this.store = store;
    this.types = types;
    this.now = now;
  }

  get(t: ResourceType, namespace: string, name: string): StoredObject {
    const found = this.find(t, namespace, name);
    if (found === undefined) throw errors.notFound(groupResource(t), name);
    return found;
  }

  find(t: ResourceType, namespace: string, name: string): StoredObject | undefined {
    return this.store.bucket(t.storageKey).get(objectKey(namespace, name));
  }

  /** Now, as metadata timestamps are written. */
  timestamp(): string {
    return rfc3339(this.now());
  }

  /** The schema server-side apply and managedFields walk: the type's, else one that accepts anything. */
  schemaOf(t: ResourceType): Structural {
    return t.schema ?? DEDUCED;
  }

  create(t: ResourceType, namespace: string, body: unknown, ctx: WriteContext): StoredObject {
    return this.createDecoded(t, namespace, decodeObject(t, this.checkBody(t, body), ctx, 'body'), ctx, undefined);
  }

  /** Creates an object already decoded; `managed` replaces the Update entry a create records (apply creates). */
  createDecoded(
    t: ResourceType,
    namespace: string,
    obj: JsonObject,
    ctx: WriteContext,
    managed: ManagedFieldsEntry[] | undefined,
  ): StoredObject {
    const m = { ...meta(obj) };
    if ((m.name === undefined || m.name === '') && typeof m.generateName === 'string' && m.generateName !== '') {
      m.name = `${m.generateName}${randomSuffix()}`;
    }
    const name = typeof m.name === 'string' ? m.name : '';
    if (t.namespaced && m.namespace !== undefined && m.namespace !== '' && m.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (t.namespaced) this.checkNamespaceOpen(t, namespace, name);
    const created: JsonObject = { ...obj };
    for (const field of SERVER_SET_ON_CREATE) delete m[field];
    Object.assign(m, { name, uid: randomUUID(), creationTimestamp: rfc3339(this.now()) });
    if (t.namespaced) m.namespace = namespace;
    else delete m.namespace;
    if (t.tracksGeneration) m.generation = 1;
    created.metadata = m;
    if (t.statusSubresource) delete created.status;
    builtinDefaults(t, created);
    this.validateWrite(t, created, true);
    const key = objectKey(namespace, name);
    if (this.store.bucket(t.storageKey).get(key) !== undefined) throw errors.alreadyExists(groupResource(t), name);
    this.setManagedFields(t, undefined, created, ctx, undefined, managed);
    return this.write(t, key, undefined, created, ctx);
  }

  update(
    t: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    ctx: WriteContext,
    subresource: Exclude<Subresource, 'scale'>,
  ): StoredObject {
    const incoming = decodeObject(t, this.checkBody(t, body), ctx, 'body');
    return this.replace(t, namespace, name, this.get(t, namespace, name), incoming, ctx, subresource, true);
  }

  patch(
    t: ResourceType,
    namespace: string,
    name: string,
    contentType: string,
    patch: unknown,
    ctx: WriteContext,
    subresource: Exclude<Subresource, 'scale'>,
  ): StoredObject {
    const current = this.get(t, namespace, name);
    const patched = this.applyPatch(t, contentType, current, patch);
    if (!isObject(patched)) throw errors.badRequest('the patch must produce a JSON object');
    return this.replace(t, namespace, name, current, decodeObject(t, patched, ctx, 'patch'), ctx, subresource, false);
  }

  applyPatch(t: ResourceType, contentType: string, current: unknown, patch: unknown): unknown {
    switch (contentType) {
      case PATCH_TYPES.json:
        return applyJsonPatch(current, patch);
      case PATCH_TYPES.merge:
        return applyMergePatch(current, patch);
      case PATCH_TYPES.strategic:
        if (!t.strategicMerge) throw errors.unsupportedMediaType(contentType, [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply]);
        return applyStrategicMergePatch(current, patch);
      default:
        throw errors.unsupportedMediaType(contentType, [
          PATCH_TYPES.json,
          PATCH_TYPES.merge,
          ...(t.strategicMerge ? [PATCH_TYPES.strategic] : []),
          PATCH_TYPES.apply,
        ]);
    }
  }

  /**
   * PUT, PATCH and apply share this: the checks a real update runs, what the subresource may change, then the
   * write. `managed` is the managedFields an apply computed (an Update computes its own).
   */
  replace(
    t: ResourceType,
    namespace: string,
    name: string,
    current: StoredObject,
    incoming: JsonObject,
    ctx: WriteContext,
    subresource: Exclude<Subresource, 'scale'>,
    isPut: boolean,
    managed?: ManagedFieldsEntry[],
  ): StoredObject {
    const im = meta(incoming);
    if (im.name !== undefined && im.name !== name) {
      throw errors.badRequest(`the name of the object (${String(im.name)}) does not match the name on the URL (${name})`);
    }
    if (t.namespaced && im.namespace !== undefined && im.namespace !== '' && im.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = im.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== meta(current).resourceVersion) throw errors.conflict(groupResource(t), name);
    if (isPut && (rv === undefined || rv === '') && !t.allowUnconditionalUpdate) {
      throw errors.invalid(t.kind, t.group, name, [
        { field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update', reason: 'FieldValueInvalid' },
      ]);
    }
    const next = subresource === 'status' ? withStatusOf(current, incoming) : this.mainResourceUpdate(t, name, current, incoming);
    if (t.group === '' && t.plural === 'secrets') encodeStringData(next);
    this.validateWrite(t, next, false, current);
    return this.finishUpdate(t, objectKey(namespace, name), current, next, ctx, subresource, managed);
  }

  /** An update of the main resource: server-owned metadata kept, status kept when it is a subresource, no new finalizers while deleting. */
  private mainResourceUpdate(t: ResourceType, name: string, current: StoredObject, incoming: JsonObject): JsonObject {
    const cm = meta(current);
    const next: JsonObject = { ...incoming, apiVersion: current.apiVersion, kind: current.kind };
    const nm: JsonObject = { ...meta(incoming) };
    for (const field of KEPT_ON_UPDATE) {
      if (cm[field] === undefined) delete nm[field];
      else nm[field] = cm[field];
    }
    if (cm.managedFields === undefined) delete nm.managedFields;
    else nm.managedFields = cm.managedFields;
    next.metadata = nm;
    if (t.statusSubresource) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    if (cm.deletionTimestamp !== undefined) {
      const added = finalizersOf(next).filter((f) => !finalizersOf(current).includes(f));
      if (added.length > 0) {
        throw errors.invalid(t.kind, t.group, name, [
          {
            field: 'metadata.finalizers',
            reason: 'FieldValueForbidden',
            message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
          },
        ]);
      }
    }
    return next;
  }

  /** 422 with every problem of the metadata and, for a custom resource, of its schema. */
  validateWrite(t: ResourceType, obj: JsonObject, create: boolean, current?: StoredObject): void {
    const m = meta(obj);
    const name = String(m.name ?? '');
    const causes = validateObjectMeta(m, 'metadata', {
      requireName: true,
      ...(create ? { nameFormat: isNamespaceType(t) ? ('label' as const) : ('subdomain' as const) } : {}),
    });
    if (t.customResource && t.schema !== undefined) causes.push(...validateAgainstSchema(obj, t.schema));
    if (t.storageKey === 'events.k8s.io/events') causes.push(...eventCauses(obj, create ? undefined : current));
    if (causes.length > 0) throw errors.invalid(t.kind, t.group, name, causes);
  }

  /**
   * The end of every update: generation, managedFields, then nothing (an unchanged object is not written),
   * removal (deleting and no finalizers left), or the write.
   */
  finishUpdate(
    t: ResourceType,
    key: string,
    current: StoredObject,
    next: JsonObject,
    ctx: WriteContext,
    subresource: Subresource | 'finalize',
    managed?: ManagedFieldsEntry[],
  ): StoredObject {
    next.metadata = { ...meta(next) };
    if (t.tracksGeneration && !deepEqual(specPart(t, current), specPart(t, next))) {
      (next.metadata as JsonObject).generation = Number(meta(current).generation ?? 0) + 1;
    }
    this.setManagedFields(t, current, next, ctx, subresource, managed);
    if (deepEqual(withoutResourceVersion(current), withoutResourceVersion(next))) return current;
    if (readyToRemove(t, next)) return this.remove(t, key, next, ctx.dryRun);
    return this.write(t, key, current, next, ctx);
  }

  private setManagedFields(
    t: ResourceType,
    current: StoredObject | undefined,
    next: JsonObject,
    ctx: WriteContext,
    subresource: Subresource | 'finalize',
    managed: ManagedFieldsEntry[] | undefined,
  ): void {
    const entries =
      managed ??
      recordUpdate(current, next, this.schemaOf(t), {
        manager: ctx.manager,
        operation: 'Update',
        apiVersion: apiVersionOf(t),
        time: rfc3339(this.now()),
        ...(subresource === undefined ? {} : { subresource }),
      });
    const m = { ...meta(next) };
    if (entries.length > 0) m.managedFields = entries;
    else delete m.managedFields;
    next.metadata = m;
  }

  /** Stores `next` (ADDED or MODIFIED) with a new resourceVersion, or only shows it under dryRun. */
  write(t: ResourceType, key: string, current: StoredObject | undefined, next: JsonObject, ctx: WriteContext): StoredObject {
    if (t.group === 'apiextensions.k8s.io') {
      validateCrd(next);
      prepareCrdStatus(next, current, rfc3339(this.now()));
    }
    const m = next.metadata as JsonObject;
    if (ctx.dryRun) {
      m.resourceVersion = current === undefined ? '' : meta(current).resourceVersion;
      return freeze(next);
    }
    const rv = this.store.nextRevision();
    m.resourceVersion = String(rv);
    const frozen = freeze(next);
    this.store.commit(t.storageKey, key, current === undefined ? 'ADDED' : 'MODIFIED', frozen, current, rv);
    if (t.group === 'apiextensions.k8s.io') this.types.replace(crdStorageKey(frozen), resourceTypesOfCrd(frozen));
    return frozen;
  }

  /** Removes the object now (DELETED), and with a CRD the custom resources it served. */
  remove(t: ResourceType, key: string, current: StoredObject | JsonObject, dryRun: boolean): StoredObject {
    if (dryRun) return current;
    const rv = this.store.nextRevision();
    const gone = freeze({ ...current, metadata: { ...meta(current), resourceVersion: String(rv) } });
    const previous = this.store.bucket(t.storageKey).get(key);
    this.store.commit(t.storageKey, key, 'DELETED', gone, previous, rv);
    if (t.group === 'apiextensions.k8s.io') this.dropCustomResources(gone);
    return gone;
  }

  /** A CRD is gone: its objects go with it (DELETED events, finalizers not waited for) and its resource stops being served. */
  private dropCustomResources(crd: StoredObject): void {
    const storageKey = crdStorageKey(crd);
    const t = this.types.all().find((x) => x.storageKey === storageKey);
    if (t !== undefined) {
      for (const [key, obj] of [...this.store.bucket(storageKey).scan('', undefined)]) this.remove(t, key, obj, false);
    }
    this.types.replace(storageKey, []);
    this.store.dropBucket(storageKey);
  }

  private checkBody(t: ResourceType, input: unknown): JsonObject {
    if (!isObject(input)) throw errors.badRequest('the request body must be a JSON object');
    const expected = apiVersionOf(t);
    // Built-in kinds are decoded with the URL's group/version/kind as defaults; custom resources are not.
    const body = t.strategicMerge ? { ...input, apiVersion: input.apiVersion || expected, kind: input.kind || t.kind } : input;
    if (body.kind === undefined || body.kind === '')
      throw errors.badRequest(`Object 'Kind' is missing in '${JSON.stringify(body).slice(0, 200)}'`);
    if (body.apiVersion !== expected) {
      throw errors.badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`,
      );
    }
    if (body.kind !== t.kind)
      throw errors.badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${t.kind})`);
    if (body.metadata !== undefined && !isObject(body.metadata)) throw errors.badRequest('metadata must be an object');
    return body;
  }

  /** The NamespaceLifecycle admission plugin: no creates in a namespace that is missing or being deleted. */
  private checkNamespaceOpen(t: ResourceType, namespace: string, name: string): void {
    const ns = this.store.bucket('/namespaces').get(namespace);
    if (ns === undefined) throw errors.notFound({ group: '', resource: 'namespaces' }, namespace);
    if (meta(ns).deletionTimestamp !== undefined) {
      const gr = groupResource(t);
      const what = gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
      throw new ApiError(
        403,
        'Forbidden',
        `${what}${name === '' ? '' : ` "${name}"`} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        {
          ...(name === '' ? {} : { name }),
          group: gr.group,
          kind: gr.resource,
          causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
        },
      );
    }
  }
}

/** The status subresource changes status only: everything else is the current object's. */
function withStatusOf(current: StoredObject, incoming: JsonObject): JsonObject {
  const next: JsonObject = { ...current, metadata: { ...meta(current) } };
  if (incoming.status === undefined) delete next.status;
  else next.status = incoming.status;
  return next;
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_ALPHABET[Math.floor(Math.random() * SUFFIX_ALPHABET.length)];
  return s;
}
