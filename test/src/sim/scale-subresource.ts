// The scale subresource: an autoscaling/v1 Scale view of objects whose type declares one (Deployments, CRDs with `subresources.scale`), read, replaced and patched.
import { groupResource, meta, type ObjectApi, type WriteContext } from './objects.ts';
import { isObject } from './patch.ts';
import type { ResourceType } from './resources.ts';
import { errors, type JsonObject } from './status.ts';
import { objectKey, type StoredObject } from './store.ts';

function getPath(obj: unknown, path: string): unknown {
  let node = obj;
  for (const part of path.replace(/^\./, '').split('.')) node = isObject(node) ? node[part] : undefined;
  return node;
}

function setPath(obj: JsonObject, path: string, value: unknown): void {
  const parts = path.replace(/^\./, '').split('.');
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    node[part] = isObject(node[part]) ? { ...node[part] } : {};
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1] as string] = value;
}

function selectorString(selector: unknown): string | undefined {
  if (!isObject(selector) || !isObject(selector.matchLabels)) return undefined;
  return Object.entries(selector.matchLabels)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

/** The `Scale` (autoscaling/v1) view of an object whose type has the scale subresource. */
export function scaleOf(t: ResourceType, obj: StoredObject): JsonObject {
  const m = meta(obj);
  if (t.scale === undefined) throw errors.notFound(groupResource(t), String(m.name));
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

/** PUT of a Scale: its spec.replicas written to the object's replicas path (resourceVersion checked when given). */
export function updateScale(
  api: ObjectApi,
  t: ResourceType,
  namespace: string,
  name: string,
  body: unknown,
  ctx: WriteContext,
): JsonObject {
  const scaleSpec = t.scale;
  if (scaleSpec === undefined) throw errors.notFound(groupResource(t), name);
  if (!isObject(body) || !isObject(body.spec)) throw errors.badRequest('a Scale object with spec.replicas is required');
  const replicas = body.spec.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw errors.invalid('Scale', 'autoscaling', name, [
      { field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` },
    ]);
  }
  const current = api.get(t, namespace, name);
  const rv = isObject(body.metadata) ? body.metadata.resourceVersion : undefined;
  if (rv !== undefined && rv !== '' && rv !== meta(current).resourceVersion) throw errors.conflict(groupResource(t), name);
  const next = { ...current } as JsonObject;
  setPath(next, scaleSpec.specReplicasPath, replicas);
  api.validateWrite(t, next, false);
  return scaleOf(t, api.finishUpdate(t, objectKey(namespace, name), current, next, ctx, 'scale'));
}

/** PATCH of a Scale: the patch applied to the Scale view, then written as a PUT of it. */
export function patchScale(
  api: ObjectApi,
  t: ResourceType,
  namespace: string,
  name: string,
  contentType: string,
  patch: unknown,
  ctx: WriteContext,
): JsonObject {
  const scale = scaleOf(t, api.get(t, namespace, name));
  // The Scale is a built-in kind: strategic merge patch is offered for it even on a custom resource.
  const patched =
    contentType === 'application/strategic-merge-patch+json'
      ? api.applyPatch({ ...t, strategicMerge: true }, contentType, scale, patch)
      : api.applyPatch(t, contentType, scale, patch);
  return updateScale(api, t, namespace, name, patched, ctx);
}
