// Server-side apply (PATCH application/apply-patch+yaml): the applied configuration typed by the schema, merged, fields the manager dropped removed, ownership and conflicts recorded.
import { parse as parseYaml } from 'yaml';
import { mergeApplied, removeUnowned } from './apply-merge.ts';
import { type FieldSet, TypeErrors, toFieldSet, within } from './field-set.ts';
import { applyOwnership, type ManagedWrite, recordApply } from './managed-fields.ts';
import { meta, type ObjectApi, type WriteContext } from './objects.ts';
import { isObject } from './patch.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import { applyDefaults, pruneNonNullableNulls } from './schema-decoding.ts';
import { ApiError, errors, type JsonObject } from './status.ts';
import type { StoredObject } from './store.ts';

export interface ApplyRequest {
  /** `fieldManager` (required). */
  manager: string;
  force: boolean;
  subresource: 'status' | undefined;
}

export interface ApplyResult {
  object: StoredObject;
  /** The apply created the object (201). */
  created: boolean;
}

/** A group/version/kind as kube-apiserver prints it: `example.com/v1, Kind=Widget`, `/v1, Kind=ConfigMap`. */
function gvkString(apiVersion: unknown, kind: unknown): string {
  const gv = typeof apiVersion === 'string' ? apiVersion : '';
  return `${gv.includes('/') ? gv : `/${gv}`}, Kind=${typeof kind === 'string' ? kind : ''}`;
}

function parseConfiguration(text: string): JsonObject {
  let applied: unknown;
  try {
    // Duplicate keys are kept (the last wins), as the apply decoder allows them outside of Strict.
    applied = parseYaml(text, { uniqueKeys: false });
  } catch (error) {
    throw errors.badRequest(`error decoding YAML: ${(error as Error).message}`);
  }
  if (!isObject(applied)) throw errors.badRequest('error decoding YAML: the applied configuration must be an object');
  return applied;
}

/** The fields a write through this endpoint may own: the main resource leaves status to /status and the other way round. */
function ownable(t: ResourceType, set: FieldSet, subresource: 'status' | undefined): FieldSet {
  if (!t.statusSubresource) return set;
  return new Set([...set].filter((p) => within(p, 'f:status') === (subresource === 'status')));
}

/** The object as the endpoint writes it: the main resource keeps the live status, /status keeps everything else. */
function resetFields(t: ResourceType, live: JsonObject, merged: JsonObject, subresource: 'status' | undefined): JsonObject {
  if (!t.statusSubresource) return merged;
  if (subresource === 'status') {
    const next: JsonObject = { ...live };
    if (merged.status === undefined) delete next.status;
    else next.status = merged.status;
    return next;
  }
  const next: JsonObject = { ...merged };
  if (live.status === undefined) delete next.status;
  else next.status = live.status;
  return next;
}

/**
 * Applies `text` to the object (creating it when missing), as kube-apiserver's field manager does:
 * - the configuration must name the URL's apiVersion and kind (else 400) and fit the schema (else 500);
 * - it is merged over the live object (list-maps by key, sets by value, atomic lists whole);
 * - fields this manager applied before and no longer applies are removed unless another manager owns them;
 * - a field another manager owns whose value changes is a 409 conflict naming them, unless `force`.
 */
export function serverSideApply(
  api: ObjectApi,
  t: ResourceType,
  namespace: string,
  name: string,
  text: string,
  ctx: WriteContext,
  request: ApplyRequest,
): ApplyResult {
  const config = parseConfiguration(text);
  const expected = apiVersionOf(t);
  // The field manager's version check: the configuration is of the URL's group, version and kind.
  if (config.apiVersion !== expected || config.kind !== t.kind)
    throw errors.badRequest(`invalid object type: ${gvkString(config.apiVersion, config.kind)}`);
  if (meta(config).managedFields !== undefined) throw errors.badRequest('metadata.managedFields must be nil');
  const schema = api.schemaOf(t);
  let applied: FieldSet;
  try {
    applied = ownable(t, toFieldSet(config, schema, true), request.subresource);
  } catch (error) {
    if (!(error instanceof TypeErrors)) throw error;
    const target = `${namespace}/${name}; ${gvkString(expected, t.kind)}`;
    // kube-apiserver answers an untypeable configuration with a plain error: 500, no reason.
    throw new ApiError(500, '', `failed to create typed patch object (${target}): ${error.message}`);
  }
  const live = api.find(t, namespace, name);
  if (live === undefined && request.subresource === 'status') throw errors.notFound({ group: t.group, resource: t.plural }, name);
  const write: ManagedWrite & { force: boolean } = {
    manager: request.manager,
    operation: 'Apply',
    apiVersion: expected,
    time: api.timestamp(),
    force: request.force,
    ...(request.subresource === undefined ? {} : { subresource: request.subresource }),
  };
  const base: JsonObject = live ?? { apiVersion: expected, kind: t.kind, metadata: { name, ...(t.namespaced ? { namespace } : {}) } };
  // A copy: the merge shares unchanged parts with the stored (frozen) object, and fields are removed from it below.
  const merged = structuredClone(mergeApplied(base, config, schema));
  const ownership = applyOwnership(live, write, applied);
  const dropped = new Set([...ownership.previous].filter((p) => !applied.has(p)));
  removeUnowned(merged, dropped, ownership.kept, schema);
  const next = resetFields(t, base, merged, request.subresource);
  // A resourceVersion in the configuration is a precondition, on /status too: kube-apiserver compares it
  // with the stored one before the status strategy copies the old metadata (409 when they differ).
  const preconditionRv = meta(config).resourceVersion;
  if (typeof preconditionRv === 'string' && preconditionRv !== '') next.metadata = { ...meta(next), resourceVersion: preconditionRv };
  if (t.customResource && t.schema !== undefined) {
    pruneNonNullableNulls(next, t.schema);
    applyDefaults(next, t.schema);
  }
  const managed = recordApply(live, next, applied, schema, write);
  if (live === undefined) {
    const nm = { ...meta(next) };
    if (nm.name === undefined) nm.name = name;
    return { object: api.createDecoded(t, namespace, { ...next, metadata: nm }, ctx, managed), created: true };
  }
  return { object: api.replace(t, namespace, name, live, next, ctx, request.subresource, false, managed), created: false };
}
