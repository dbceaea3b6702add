// Field ownership (`metadata.managedFields`) as kube-apiserver's field manager records it: Update writers take what they change, Apply managers own what they apply, conflicts between them are found.
import { compareObjects, decodeFieldsV1, describePath, encodeFieldsV1, type FieldSet } from './field-set.ts';
import { isObject } from './patch.ts';
import { ApiError, type JsonObject, type StatusCause } from './status.ts';
import type { Structural } from './structural-schema.ts';

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Update' | 'Apply';
  apiVersion: string;
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

/** Who writes: a manager name, how (Update or Apply), at which version, through which subresource. */
export interface ManagedWrite {
  manager: string;
  operation: 'Update' | 'Apply';
  apiVersion: string;
  time: string;
  subresource?: string;
}

interface Manager {
  manager: string;
  operation: 'Update' | 'Apply';
  apiVersion: string;
  subresource: string;
  time: string | undefined;
  set: FieldSet;
}

/** Managers are told apart by name, operation and subresource, and Update managers also by apiVersion. */
function sameManager(a: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>, b: typeof a): boolean {
  return (
    a.manager === b.manager &&
    a.operation === b.operation &&
    a.subresource === b.subresource &&
    (a.operation === 'Apply' || a.apiVersion === b.apiVersion)
  );
}

export function entriesOf(obj: JsonObject | undefined): ManagedFieldsEntry[] {
  const m = obj?.metadata;
  const entries = isObject(m) ? m.managedFields : undefined;
  return Array.isArray(entries) ? (entries.filter((e) => isObject(e) && isObject(e.fieldsV1)) as ManagedFieldsEntry[]) : [];
}

function decode(obj: JsonObject | undefined): Manager[] {
  return entriesOf(obj).map((e) => ({
    manager: String(e.manager),
    operation: e.operation === 'Apply' ? 'Apply' : 'Update',
    apiVersion: String(e.apiVersion ?? ''),
    subresource: typeof e.subresource === 'string' ? e.subresource : '',
    time: typeof e.time === 'string' ? e.time : undefined,
    set: decodeFieldsV1(e.fieldsV1),
  }));
}

/** Entries in kube-apiserver's order: Apply before Update, then by time, manager, apiVersion and subresource. */
function encode(managers: Manager[]): ManagedFieldsEntry[] {
  const order = (a: Manager, b: Manager) =>
    a.operation.localeCompare(b.operation) ||
    (a.time ?? '').localeCompare(b.time ?? '') ||
    a.manager.localeCompare(b.manager) ||
    a.apiVersion.localeCompare(b.apiVersion) ||
    a.subresource.localeCompare(b.subresource);
  return managers
    .filter((m) => m.set.size > 0)
    .sort(order)
    .map((m) => ({
      manager: m.manager,
      operation: m.operation,
      apiVersion: m.apiVersion,
      ...(m.time === undefined ? {} : { time: m.time }),
      fieldsType: 'FieldsV1',
      fieldsV1: encodeFieldsV1(m.set),
      ...(m.subresource === '' ? {} : { subresource: m.subresource }),
    }));
}

function writer(managers: Manager[], write: ManagedWrite): Manager {
  const key = { ...write, subresource: write.subresource ?? '' };
  let found = managers.find((m) => sameManager(m, key));
  if (found === undefined) {
    found = { ...key, time: undefined, set: new Set() };
    managers.push(found);
  }
  found.apiVersion = write.apiVersion;
  return found;
}

/**
 * The managedFields after an Update (create, update, patch): the writer gains every field it added or
 * changed, every other manager loses those, removed fields leave every set, and empty entries go.
 */
export function recordUpdate(
  before: JsonObject | undefined,
  after: JsonObject,
  schema: Structural,
  write: ManagedWrite,
): ManagedFieldsEntry[] {
  const diff = compareObjects(before ?? {}, after, schema);
  const taken = new Set([...diff.modified, ...diff.added]);
  if (taken.size === 0 && diff.removed.size === 0) return entriesOf(before);
  const managers = decode(before);
  const me = writer(managers, write);
  for (const m of managers) {
    for (const p of diff.removed) m.set.delete(p);
    if (m !== me) for (const p of taken) m.set.delete(p);
  }
  for (const p of taken) if (!diff.removed.has(p)) me.set.add(p);
  if (taken.size > 0) me.time = write.time;
  return encode(managers);
}

/** The state of ownership an apply starts from: every manager, and the applier's previous set. */
export interface ApplyOwnership {
  /** The applier's set before this apply (empty the first time). */
  previous: FieldSet;
  /** What every other manager owns, with the applier's new set: a field in here stays even if the applier dropped it. */
  kept: FieldSet;
}

export function applyOwnership(live: JsonObject | undefined, write: ManagedWrite, applied: FieldSet): ApplyOwnership {
  const managers = decode(live);
  const key = { ...write, subresource: write.subresource ?? '' };
  const previous = managers.find((m) => sameManager(m, key))?.set ?? new Set<string>();
  const kept = new Set(applied);
  for (const m of managers) if (!sameManager(m, key)) for (const p of m.set) kept.add(p);
  return { previous, kept };
}

/**
 * The managedFields after an apply: conflicts (another manager owns a field the apply changes) are a 409
 * unless forced, when the field moves to the applier; fields the object no longer has leave every set.
 */
export function recordApply(
  live: JsonObject | undefined,
  result: JsonObject,
  applied: FieldSet,
  schema: Structural,
  write: ManagedWrite & { force: boolean },
): ManagedFieldsEntry[] {
  const managers = decode(live);
  const me = writer(managers, write);
  const diff = compareObjects(live ?? {}, result, schema);
  const changed = new Set([...diff.modified, ...diff.added]);
  const conflicts: { manager: Manager; path: string }[] = [];
  for (const m of managers) {
    if (m === me) continue;
    for (const p of m.set) if (changed.has(p)) conflicts.push({ manager: m, path: p });
  }
  if (conflicts.length > 0 && !write.force) throw conflictError(conflicts);
  for (const { manager, path } of conflicts) manager.set.delete(path);
  for (const m of managers) if (m !== me) for (const p of diff.removed) m.set.delete(p);
  me.set = new Set(applied);
  if (changed.size > 0 || diff.removed.size > 0) me.time = write.time;
  return encode(managers);
}

/** `"mgr"`, `"mgr" with subresource "status"`, `"mgr" using v1` (Update managers), as kube-apiserver prints them. */
function printManager(m: Manager): string {
  const name = `${JSON.stringify(m.manager)}${m.subresource === '' ? '' : ` with subresource ${JSON.stringify(m.subresource)}`}`;
  return m.operation === 'Update' ? `${name} using ${m.apiVersion}` : name;
}

function conflictError(conflicts: { manager: Manager; path: string }[]): ApiError {
  const sorted = [...conflicts].sort(
    (a, b) => printManager(a.manager).localeCompare(printManager(b.manager)) || a.path.localeCompare(b.path),
  );
  const causes: StatusCause[] = sorted.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${printManager(c.manager)}`,
    field: describePath(c.path),
  }));
  let message: string;
  const first = sorted[0];
  if (sorted.length === 1 && first !== undefined) {
    message = `Apply failed with 1 conflict: conflict with ${printManager(first.manager)}: ${describePath(first.path)}`;
  } else {
    const lines: string[] = [];
    let current = '';
    for (const c of sorted) {
      const printed = printManager(c.manager);
      if (printed !== current) lines.push(`conflicts with ${printed}:`);
      current = printed;
      lines.push(`- ${describePath(c.path)}`);
    }
    message = `Apply failed with ${sorted.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, { causes });
}

/** The manager name kube-apiserver derives when `fieldManager` is absent: the User-Agent's program name. */
export function managerFromUserAgent(userAgent: string | undefined): string {
  const name = (userAgent ?? '').split('/')[0]?.trim() ?? '';
  return name === '' ? 'unknown' : name.slice(0, 128);
}
