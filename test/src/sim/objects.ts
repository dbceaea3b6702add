// Object semantics of kube-apiserver: create, update, patch and delete with resourceVersion, generation, finalizers, status and scale.
import { randomUUID } from 'node:crypto';
import { updateManagedFields } from './managed-fields.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, deepEqual, isObject, PATCH_TYPES } from './patch.ts';
import { apiVersionOf, type ResourceType, resourceTypesOfCrd } from './resources.ts';
import { ApiError, errors, type GroupResource, type JsonObject, type StatusCause } from './status.ts';
import { freeze, objectKey, type Store, type StoredObject } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';

export interface WriteContext {
  /** `fieldManager`, else derived from the User-Agent. */
  manager: string;
  dryRun: boolean;
}

export type Subresource = 'status' | 'scale' | undefined;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function groupResource(t: ResourceType): GroupResource {
  return { group: t.group, resource: t.plural };
}

function meta(obj: StoredObject | JsonObject): JsonObject {
  return (obj.metadata ?? {}) as JsonObject;
}

function finalizersOf(obj: StoredObject | JsonObject): string[] {
  const f = meta(obj).finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}

/** The object without the parts that do not count for generation: metadata, and status when it is a subresource. */
function specPart(t: ResourceType, obj: StoredObject | JsonObject): JsonObject {
  const { metadata: _m, status, ...rest } = obj;
  return t.statusSubresource ? rest : { ...rest, status };
}

function withoutVolatileMetadata(obj: StoredObject | JsonObject): JsonObject {
  const { resourceVersion: _rv, managedFields: _mf, ...m } = meta(obj);
  return { ...obj, metadata: m };
}

function getPath(obj: unknown, path: string): unknown {
  let node = obj;
  for (const part of path.replace(/^\./, '').split('.')) node = isObject(node) ? node[part] : undefined;
  return node;
}

function setPath(obj: JsonObject, path: string, value: unknown): void {
  const parts = path.replace(/^\./, '').split('.');
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isObject(node[part])) node[part] = {};
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1] as string] = value;
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun: boolean;
}

export interface DeleteResult {
  object: StoredObject;
  /** False when finalizers keep the object: it now carries a deletionTimestamp. */
  deleted: boolean;
}

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
    const found = this.store.bucket(t.storageKey).get(objectKey(namespace, name));
    if (found === undefined) throw errors.notFound(groupResource(t), name);
    return found;
  }

  create(t: ResourceType, namespace: string, body: unknown, ctx: WriteContext): StoredObject {
    const obj = this.checkBody(t, body);
    const m = { ...meta(obj) };
    if ((m.name === undefined || m.name === '') && typeof m.generateName === 'string' && m.generateName !== '') {
      m.name = `${m.generateName}${randomSuffix()}`;
    }
    const name = typeof m.name === 'string' ? m.name : '';
    this.checkNamespace(t, namespace, m);
    if (t.namespaced) this.checkNamespaceOpen(namespace);
    this.validateMetadata(t, name, m, undefined);
    const key = objectKey(namespace, name);
    if (this.store.bucket(t.storageKey).get(key) !== undefined) throw errors.alreadyExists(groupResource(t), name);
    const time = rfc3339(this.now());
    const created: JsonObject = { ...obj };
    for (const field of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'resourceVersion', 'managedFields', 'selfLink', 'generation'])
      delete m[field];
    Object.assign(m, { name, uid: randomUUID(), creationTimestamp: time });
    if (t.namespaced) m.namespace = namespace;
    else delete m.namespace;
    if (t.tracksGeneration) m.generation = 1;
    created.metadata = m;
    if (t.statusSubresource) delete created.status;
    this.defaults(t, created, time);
    return this.write(t, key, undefined, created, ctx, undefined, 'Update');
  }

  update(t: ResourceType, namespace: string, name: string, body: unknown, ctx: WriteContext, subresource: Subresource): StoredObject {
    if (subresource === 'scale') return this.updateScale(t, namespace, name, body, ctx);
    const incoming = this.checkBody(t, body);
    const current = this.get(t, namespace, name);
    return this.replace(t, namespace, name, current, incoming, ctx, subresource, true);
  }

  patch(
    t: ResourceType,
    namespace: string,
    name: string,
    contentType: string,
    patch: unknown,
    ctx: WriteContext,
    subresource: Subresource,
  ): StoredObject {
    if (subresource === 'scale') {
      const scale = this.scaleOf(t, this.get(t, namespace, name));
      return this.updateScale(t, namespace, name, this.applyPatch(t, contentType, scale, patch, true), ctx);
    }
    const current = this.get(t, namespace, name);
    const patched = this.applyPatch(t, contentType, current, patch, false);
    if (!isObject(patched)) throw errors.badRequest('the patch must produce a JSON object');
    return this.replace(t, namespace, name, current, patched, ctx, subresource, false);
  }

  delete(t: ResourceType, namespace: string, name: string, options: DeleteOptions, ctx: WriteContext): DeleteResult {
    const current = this.get(t, namespace, name);
    const m = meta(current);
    const pre = options.preconditions;
    if (pre?.uid !== undefined && pre.uid !== m.uid) {
      throw new ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(m.uid)}`, {
        name,
        group: t.group,
        kind: t.plural,
      });
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== m.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(m.resourceVersion)}`,
        { name, group: t.group, kind: t.plural },
      );
    }
    const key = objectKey(namespace, name);
    const isNamespace = t.group === '' && t.plural === 'namespaces';
    if (finalizersOf(current).length > 0 || isNamespace) {
      if (m.deletionTimestamp !== undefined) return { object: current, deleted: false };
      const next: JsonObject = { ...current, metadata: { ...m, deletionTimestamp: rfc3339(this.now()), deletionGracePeriodSeconds: 0 } };
      if (t.tracksGeneration) (next.metadata as JsonObject).generation = Number(m.generation ?? 0) + 1;
      if (isNamespace) next.status = { ...((current.status as JsonObject | undefined) ?? {}), phase: 'Terminating' };
      const written = this.write(t, key, current, next, ctx, undefined, 'Update', true);
      if (isNamespace && !options.dryRun) return { object: written, deleted: this.terminateNamespace(name, ctx) };
      return { object: written, deleted: false };
    }
    const removed = this.remove(t, key, current, options.dryRun);
    if (!options.dryRun) this.afterNamespacedDelete(t, key);
    return { object: removed, deleted: true };
  }

  /** The `Scale` (autoscaling/v1) view of an object whose type has the scale subresource. */
  scaleOf(t: ResourceType, obj: StoredObject): JsonObject {
    if (t.scale === undefined) throw errors.notFound(groupResource(t), String(meta(obj).name));
    const m = meta(obj);
    const selector = t.scale.labelSelectorPath === undefined ? undefined : getPath(obj, t.scale.labelSelectorPath);
    const deploymentSelector = t.group === 'apps' ? selectorString(getPath(obj, '.spec.selector')) : undefined;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: m.name,
        ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
        uid: m.uid,
        resourceVersion: m.resourceVersion,
        creationTimestamp: m.creationTimestamp,
      },
      spec: { replicas: Number(getPath(obj, t.scale.specReplicasPath) ?? 0) },
      status: {
        replicas: Number(getPath(obj, t.scale.statusReplicasPath) ?? 0),
        ...(deploymentSelector !== undefined ? { selector: deploymentSelector } : typeof selector === 'string' ? { selector } : {}),
      },
    };
  }

  private updateScale(t: ResourceType, namespace: string, name: string, body: unknown, ctx: WriteContext): StoredObject {
    const scaleSpec = t.scale;
    if (scaleSpec === undefined) throw errors.notFound(groupResource(t), name);
    if (!isObject(body) || !isObject(body.spec)) throw errors.badRequest('a Scale object with spec.replicas is required');
    const replicas = body.spec.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw errors.invalid('Scale', 'autoscaling', name, [
        { field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
      ]);
    }
    const current = this.get(t, namespace, name);
    const rv = meta(body).resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== meta(current).resourceVersion) throw errors.conflict(groupResource(t), name);
    const next = structuredClone(current) as JsonObject;
    setPath(next, scaleSpec.specReplicasPath, replicas);
    const written = this.finishUpdate(t, objectKey(namespace, name), current, next, ctx, 'scale');
    return this.scaleOf(t, written);
  }

  private applyPatch(t: ResourceType, contentType: string, current: unknown, patch: unknown, isScale: boolean): unknown {
    switch (contentType) {
      case PATCH_TYPES.json:
        return applyJsonPatch(current, patch);
      case PATCH_TYPES.merge:
        return applyMergePatch(current, patch);
      case PATCH_TYPES.strategic:
        if (!t.strategicMerge && !isScale)
          throw errors.unsupportedMediaType(contentType, [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply]);
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

  /** PUT and PATCH share this: the checks a real update runs, then the write. */
  private replace(
    t: ResourceType,
    namespace: string,
    name: string,
    current: StoredObject,
    incoming: JsonObject,
    ctx: WriteContext,
    subresource: Subresource,
    isPut: boolean,
  ): StoredObject {
    const gr = groupResource(t);
    const im = meta(incoming);
    if (im.name !== undefined && im.name !== name) {
      throw errors.badRequest(`the name of the object (${String(im.name)}) does not match the name on the URL (${name})`);
    }
    if (t.namespaced && im.namespace !== undefined && im.namespace !== '' && im.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = im.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== meta(current).resourceVersion) throw errors.conflict(gr, name);
    if (isPut && (rv === undefined || rv === '') && !t.allowUnconditionalUpdate) {
      throw errors.invalid(t.kind, t.group, name, [
        { field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update', reason: 'FieldValueInvalid' },
      ]);
    }
    const cm = meta(current);
    let next: JsonObject;
    if (subresource === 'status') {
      if (!t.statusSubresource) throw errors.notFound(gr, name);
      next = { ...current, metadata: { ...cm } };
      if (incoming.status === undefined) delete next.status;
      else next.status = incoming.status;
    } else {
      next = { ...incoming, apiVersion: current.apiVersion, kind: current.kind };
      const nm: JsonObject = { ...im };
      for (const field of [
        'name',
        'namespace',
        'uid',
        'creationTimestamp',
        'deletionTimestamp',
        'deletionGracePeriodSeconds',
        'generation',
        'generateName',
      ]) {
        if (cm[field] === undefined) delete nm[field];
        else nm[field] = cm[field];
      }
      if (im.managedFields === undefined && cm.managedFields !== undefined) nm.managedFields = cm.managedFields;
      next.metadata = nm;
      if (t.statusSubresource) {
        if (current.status === undefined) delete next.status;
        else next.status = current.status;
      }
      this.validateMetadata(t, name, nm, cm);
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
    }
    if (t.group === '' && t.plural === 'secrets') encodeStringData(next);
    return this.finishUpdate(t, objectKey(namespace, name), current, next, ctx, subresource);
  }

  private finishUpdate(
    t: ResourceType,
    key: string,
    current: StoredObject,
    next: JsonObject,
    ctx: WriteContext,
    subresource: Subresource,
  ): StoredObject {
    if (t.tracksGeneration && !deepEqual(specPart(t, current), specPart(t, next))) {
      (next.metadata as JsonObject).generation = Number(meta(current).generation ?? 0) + 1;
    }
    if (deepEqual(withoutVolatileMetadata(current), withoutVolatileMetadata(next))) return current;
    if (meta(next).deletionTimestamp !== undefined && finalizersOf(next).length === 0) {
      const removed = this.remove(t, key, next, ctx.dryRun);
      if (t.plural === 'namespaces' && t.group === '') return removed;
      this.afterNamespacedDelete(t, key);
      return removed;
    }
    return this.write(t, key, current, next, ctx, subresource, 'Update');
  }

  private write(
    t: ResourceType,
    key: string,
    current: StoredObject | undefined,
    next: JsonObject,
    ctx: WriteContext,
    subresource: Subresource,
    operation: 'Update' | 'Apply',
    skipManagedFields = false,
  ): StoredObject {
    if (t.group === 'apiextensions.k8s.io') {
      validateCrd(next);
      this.prepareCrd(next, current);
    }
    const m = next.metadata as JsonObject;
    if (!skipManagedFields) {
      const managed = updateManagedFields(current, next, {
        manager: ctx.manager,
        operation,
        apiVersion: String(next.apiVersion),
        time: rfc3339(this.now()),
        ...(subresource === undefined ? {} : { subresource }),
      });
      if (managed.length > 0) m.managedFields = managed;
      else delete m.managedFields;
    }
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

  private remove(t: ResourceType, key: string, current: StoredObject | JsonObject, dryRun: boolean): StoredObject {
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

  /** Namespace deletion: every object in it is deleted (finalizers honoured); the namespace goes once it is empty. */
  private terminateNamespace(namespace: string, ctx: WriteContext): boolean {
    for (const t of this.namespacedStorageTypes()) {
      for (const [, obj] of [...this.store.bucket(t.storageKey).scan(`${namespace}/`, undefined)]) {
        if (meta(obj).deletionTimestamp !== undefined) continue;
        this.delete(t, namespace, String(meta(obj).name), { dryRun: false }, ctx);
      }
    }
    return this.finishNamespaceIfEmpty(namespace);
  }

  private afterNamespacedDelete(t: ResourceType, key: string): void {
    if (!t.namespaced) return;
    const namespace = key.slice(0, key.indexOf('/'));
    const ns = this.store.bucket('/namespaces').get(namespace);
    if (ns !== undefined && meta(ns).deletionTimestamp !== undefined) this.finishNamespaceIfEmpty(namespace);
  }

  private finishNamespaceIfEmpty(namespace: string): boolean {
    for (const t of this.namespacedStorageTypes()) {
      if (!this.store.bucket(t.storageKey).scan(`${namespace}/`, undefined).next().done) return false;
    }
    const nsType = this.types.find('', 'v1', 'namespaces') as ResourceType;
    const ns = this.store.bucket(nsType.storageKey).get(namespace);
    if (ns === undefined) return true;
    if (finalizersOf(ns).length > 0) return false;
    this.remove(nsType, namespace, ns, false);
    return true;
  }

  private namespacedStorageTypes(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.types.all()) if (t.namespaced && !t.createOnly && !seen.has(t.storageKey)) seen.set(t.storageKey, t);
    return [...seen.values()];
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

  private checkNamespace(t: ResourceType, namespace: string, m: JsonObject): void {
    if (!t.namespaced) return;
    if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
  }

  private checkNamespaceOpen(namespace: string): void {
    const ns = this.store.bucket('/namespaces').get(namespace);
    if (ns === undefined) throw errors.notFound({ group: '', resource: 'namespaces' }, namespace);
    if (meta(ns).deletionTimestamp !== undefined) {
      throw new ApiError(403, 'Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`, {
        name: namespace,
        kind: 'namespaces',
        causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
      });
    }
  }

  private validateMetadata(t: ResourceType, name: string, m: JsonObject, current: JsonObject | undefined): void {
    const causes: StatusCause[] = [];
    if (name === '')
      causes.push({ field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
    else if (current === undefined) {
      const label = t.plural === 'namespaces' && t.group === '';
      if (name.length > (label ? 63 : 253) || !(label ? DNS_LABEL : DNS_SUBDOMAIN).test(name)) {
        causes.push({
          field: 'metadata.name',
          message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 ${label ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-'${label ? '' : " or '.'"}, and must start and end with an alphanumeric character`,
        });
      }
    }
    const labels = m.labels;
    if (labels !== undefined && labels !== null) {
      if (!isObject(labels)) causes.push({ field: 'metadata.labels', message: 'Invalid value: labels must be a map of strings' });
      else
        for (const [k, v] of Object.entries(labels)) {
          if (!LABEL_KEY.test(k))
            causes.push({
              field: 'metadata.labels',
              message: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.'`,
            });
          if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
            causes.push({
              field: `metadata.labels`,
              message: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
            });
          }
        }
    }
    if (m.annotations !== undefined && m.annotations !== null && !isObject(m.annotations)) {
      causes.push({ field: 'metadata.annotations', message: 'Invalid value: annotations must be a map of strings' });
    }
    if (
      m.finalizers !== undefined &&
      m.finalizers !== null &&
      (!Array.isArray(m.finalizers) || m.finalizers.some((f) => typeof f !== 'string'))
    ) {
      causes.push({ field: 'metadata.finalizers', message: 'Invalid value: finalizers must be a list of strings' });
    }
    if (causes.length > 0) throw errors.invalid(t.kind, t.group, name, causes);
  }

  private defaults(t: ResourceType, obj: JsonObject, _time: string): void {
    const m = obj.metadata as JsonObject;
    if (t.group === '' && t.plural === 'namespaces') {
      m.labels = { ...((m.labels as JsonObject | undefined) ?? {}), 'kubernetes.io/metadata.name': m.name };
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
    }
    if (t.group === '' && t.plural === 'secrets') {
      encodeStringData(obj);
      if (obj.type === undefined) obj.type = 'Opaque';
    }
    if (t.storageKey === 'apps/deployments') {
      const spec = { ...((obj.spec as JsonObject | undefined) ?? {}) };
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
      obj.spec = spec;
      obj.status = {};
    }
  }

  /** Fills a CRD's status the way the apiextensions controllers do, at once: names accepted, established. */
  private prepareCrd(crd: JsonObject, current: StoredObject | undefined): void {
    const spec = crd.spec as JsonObject;
    const time = rfc3339(this.now());
    const previous = (current?.status as JsonObject | undefined) ?? {};
    const versions = ((spec.versions as JsonObject[] | undefined) ?? []).filter((v) => v.storage === true).map((v) => v.name);
    const conditions = [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: time, reason: 'NoConflicts', message: 'no conflicts found' },
      {
        type: 'Established',
        status: 'True',
        lastTransitionTime: time,
        reason: 'InitialNamesAccepted',
        message: 'the initial names have been accepted',
      },
    ];
    crd.status = {
      conditions: (previous.conditions as unknown[] | undefined) ?? conditions,
      acceptedNames: spec.names,
      storedVersions: [...new Set([...((previous.storedVersions as string[] | undefined) ?? []), ...versions])],
    };
  }
}

/** The checks of a CRD's spec that keep the simulator from serving nonsense; kube-apiserver checks much more. */
function validateCrd(crd: JsonObject): void {
  const name = String(meta(crd).name ?? '');
  const spec = isObject(crd.spec) ? crd.spec : {};
  const names = isObject(spec.names) ? spec.names : {};
  const causes: StatusCause[] = [];
  if (typeof spec.group !== 'string' || spec.group === '')
    causes.push({ field: 'spec.group', reason: 'FieldValueRequired', message: 'Required value' });
  if (typeof names.plural !== 'string' || names.plural === '')
    causes.push({ field: 'spec.names.plural', reason: 'FieldValueRequired', message: 'Required value' });
  if (typeof names.kind !== 'string' || names.kind === '')
    causes.push({ field: 'spec.names.kind', reason: 'FieldValueRequired', message: 'Required value' });
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    causes.push({
      field: 'spec.scope',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"`,
    });
  }
  const versions = Array.isArray(spec.versions) ? (spec.versions as unknown[]) : [];
  if (versions.length === 0)
    causes.push({
      field: 'spec.versions',
      reason: 'FieldValueInvalid',
      message: 'Invalid value: must have exactly one version marked as storage version',
    });
  else if (versions.filter((v) => isObject(v) && v.storage === true).length !== 1) {
    causes.push({
      field: 'spec.versions',
      reason: 'FieldValueInvalid',
      message: 'Invalid value: must have exactly one version marked as storage version',
    });
  }
  if (causes.length === 0 && name !== `${String(names.plural)}.${String(spec.group)}`) {
    causes.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group` });
  }
  if (causes.length > 0) throw errors.invalid('CustomResourceDefinition', 'apiextensions.k8s.io', name, causes);
}

export function crdStorageKey(crd: StoredObject | JsonObject): string {
  const spec = crd.spec as JsonObject;
  return `${String(spec.group)}/${String((spec.names as JsonObject).plural)}`;
}

function selectorString(selector: unknown): string | undefined {
  if (!isObject(selector) || !isObject(selector.matchLabels)) return undefined;
  return Object.entries(selector.matchLabels)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

function encodeStringData(obj: JsonObject): void {
  if (!isObject(obj.stringData)) return;
  const data = { ...((obj.data as JsonObject | undefined) ?? {}) };
  for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  obj.data = data;
  delete obj.stringData;
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_ALPHABET[Math.floor(Math.random() * SUFFIX_ALPHABET.length)];
  return s;
}
