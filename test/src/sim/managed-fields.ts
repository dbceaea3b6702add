// Server-side field ownership (`metadata.managedFields`) as kube-apiserver records it on every write.
import { isObject } from './patch.ts';
import type { JsonObject } from './status.ts';

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Update' | 'Apply';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

/** Metadata the server owns; nobody "manages" these. */
const SERVER_METADATA = new Set([
  'name',
  'namespace',
  'generateName',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
]);

const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  env: 'name',
  volumes: 'name',
  ports: 'containerPort',
  ownerReferences: 'uid',
  conditions: 'type',
};
const SEP = '\u0000';

/** Flattens an object into field paths (as FieldsV1 segments) → the JSON of the leaf there; maps mark themselves with ".". */
function flatten(value: unknown, prefix: string, out: Map<string, string>, field: string): void {
  if (isObject(value)) {
    if (prefix !== '' && prefix !== `f:metadata`) out.set(`${prefix}${SEP}.`, '');
    for (const [key, child] of Object.entries(value)) {
      if (prefix === '' && (key === 'apiVersion' || key === 'kind')) continue;
      if (prefix === 'f:metadata' && SERVER_METADATA.has(key)) continue;
      flatten(child, prefix === '' ? `f:${key}` : `${prefix}${SEP}f:${key}`, out, key);
    }
    return;
  }
  if (Array.isArray(value)) {
    const mergeKey = MERGE_KEYS[field];
    if (field === 'finalizers') {
      for (const item of value) out.set(`${prefix}${SEP}v:${JSON.stringify(item)}`, '');
      return;
    }
    if (mergeKey !== undefined && value.every((item) => isObject(item) && item[mergeKey] !== undefined)) {
      out.set(`${prefix}${SEP}.`, '');
      for (const item of value as JsonObject[])
        flatten(item, `${prefix}${SEP}k:${JSON.stringify({ [mergeKey]: item[mergeKey] })}`, out, '');
      return;
    }
  }
  out.set(prefix, JSON.stringify(value));
}

function fieldsOf(obj: JsonObject | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (obj !== undefined) flatten(obj, '', out, '');
  return out;
}

function toFieldsV1(paths: Iterable<string>): JsonObject {
  const root: JsonObject = {};
  for (const path of paths) {
    let node = root;
    for (const segment of path.split(SEP)) {
      const next = (node[segment] as JsonObject | undefined) ?? {};
      node[segment] = next;
      node = next;
    }
  }
  return root;
}

function fromFieldsV1(fields: JsonObject, prefix = '', out = new Set<string>()): Set<string> {
  for (const [segment, child] of Object.entries(fields)) {
    const path = prefix === '' ? segment : `${prefix}${SEP}${segment}`;
    if (isObject(child) && Object.keys(child).length > 0) fromFieldsV1(child, path, out);
    else out.add(path);
  }
  return out;
}

export interface ManagedWrite {
  manager: string;
  operation: 'Update' | 'Apply';
  apiVersion: string;
  time: string;
  subresource?: string;
}

/**
 * The managedFields after a write: the writer gains every field it set or changed, other managers lose
 * those fields, removed fields leave every set, and entries left empty are dropped.
 */
export function updateManagedFields(before: JsonObject | undefined, after: JsonObject, write: ManagedWrite): ManagedFieldsEntry[] {
  const oldFields = fieldsOf(before);
  const newFields = fieldsOf(after);
  const changed = new Set<string>();
  for (const [path, value] of newFields) if (oldFields.get(path) !== value) changed.add(path);
  const beforeEntries = (((before?.metadata as JsonObject | undefined)?.managedFields as ManagedFieldsEntry[] | undefined) ?? []).filter(
    (e) => isObject(e) && isObject(e.fieldsV1),
  );
  const entries: ManagedFieldsEntry[] = [];
  let mine: Set<string> | undefined;
  const sameWriter = (e: ManagedFieldsEntry) =>
    e.manager === write.manager && e.operation === write.operation && (e.subresource ?? '') === (write.subresource ?? '');
  for (const entry of beforeEntries) {
    const paths = new Set([...fromFieldsV1(entry.fieldsV1)].filter((p) => newFields.has(p) || p.endsWith(`${SEP}.`)));
    if (sameWriter(entry)) {
      mine = paths;
      continue;
    }
    for (const p of changed) paths.delete(p);
    if ([...paths].some((p) => !p.endsWith(`${SEP}.`))) entries.push({ ...entry, fieldsV1: toFieldsV1(paths) });
  }
  if (changed.size === 0 && mine === undefined) return entries;
  const owned = new Set([...(mine ?? []), ...changed]);
  const entry: ManagedFieldsEntry = {
    manager: write.manager,
    operation: write.operation,
    apiVersion: write.apiVersion,
    time: write.time,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(owned),
    ...(write.subresource === undefined ? {} : { subresource: write.subresource }),
  };
  entries.push(entry);
  return entries;
}

/** The manager name kube-apiserver derives when `fieldManager` is absent: the User-Agent's program name. */
export function managerFromUserAgent(userAgent: string | undefined): string {
  const name = (userAgent ?? '').split('/')[0]?.trim() ?? '';
  return name === '' ? 'unknown' : name.slice(0, 128);
}
