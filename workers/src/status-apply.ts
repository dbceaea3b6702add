// Turns a reconcile's collected status changes into a server-side apply configuration for /status: what this manager applied before, with the changes over it, or nothing when applying would change nothing.
//
// Why "what it applied before": an apply is a manager's whole intent, so a field it applied last
// time and leaves out now is removed. `ctx.patchStatus` collects changes, not the whole intent; the
// manager's earlier fields are read back from the object's managedFields (its Apply entry on the
// status subresource) and the changes are laid over them, so a field the reconcile did not mention
// stays — merge-patch semantics for the controller author, field ownership on the server.
//
// Lists of objects that each carry a string `type` (the Kubernetes convention for `conditions`, a
// list-map keyed by type) merge item by item, as the server merges them; any other list is replaced
// whole. A reconcile should therefore patch only its own conditions: another controller's condition
// copied into the patch would become co-owned by this manager.
import { isDeepStrictEqual } from 'node:util';
import type { StoredObject } from '@conveyor/shared';

type Json = Record<string, unknown>;

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Json;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A non-empty list whose items are objects with a string `type`: merged by type. */
function keyedByType(value: unknown): value is Json[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => isObject(item) && typeof item.type === 'string');
}

const hasChildren = (fields: Json) => Object.keys(fields).some((k) => k !== '.');

/** `value` cut down to the fields of a FieldsV1 set (`f:` fields, `k:` list-map items, `v:` set values). */
export function projectFields(value: unknown, fields: Json): unknown {
  if (isObject(value)) {
    const out: Json = {};
    for (const [path, child] of Object.entries(fields)) {
      if (!path.startsWith('f:')) continue;
      const name = path.slice(2);
      if (!(name in value)) continue;
      out[name] = isObject(child) && hasChildren(child) ? projectFields(value[name], child) : structuredClone(value[name]);
    }
    return out;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const [path, child] of Object.entries(fields)) {
      if (path.startsWith('k:')) {
        const keys = JSON.parse(path.slice(2)) as Json;
        const item = value.find((v) => isObject(v) && Object.entries(keys).every(([k, want]) => isDeepStrictEqual(v[k], want)));
        if (item === undefined) continue;
        out.push(isObject(child) && hasChildren(child) ? projectFields(item, child) : structuredClone(item));
      } else if (path.startsWith('v:')) {
        const wanted = JSON.parse(path.slice(2)) as unknown;
        if (value.some((v) => isDeepStrictEqual(v, wanted))) out.push(wanted);
      }
    }
    return out;
  }
  return structuredClone(value);
}

/** The status fields `manager` applied to /status before, read back from managedFields; `{}` when it never did. */
export function appliedStatus(object: StoredObject, manager: string): Json {
  const entries = (object.metadata.managedFields ?? []) as ManagedFieldsEntry[];
  const entry = entries.find((e) => e.manager === manager && e.operation === 'Apply' && e.subresource === 'status');
  const fields = entry?.fieldsV1?.['f:status'];
  if (!isObject(fields) || !isObject(object.status)) return {};
  const projected = projectFields(object.status, fields);
  return isObject(projected) ? projected : {};
}

/** `base` with `changes` over it: objects merge, `null` removes, lists keyed by type merge by type, anything else replaces. */
export function layChanges(base: unknown, changes: unknown): unknown {
  if (isObject(changes)) {
    const out: Json = isObject(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) delete out[key];
      else out[key] = layChanges(out[key], value);
    }
    return out;
  }
  if (keyedByType(changes) && keyedByType(base)) {
    const out = [...base];
    for (const item of changes) {
      const at = out.findIndex((x) => x.type === item.type);
      if (at === -1) out.push(structuredClone(item));
      else out[at] = structuredClone(item);
    }
    return out;
  }
  return structuredClone(changes);
}

/** Every field of `intent` has its value in `current` (list-map items found by type; other lists equal whole). */
function holds(current: unknown, intent: unknown): boolean {
  if (isObject(intent)) return isObject(current) && Object.entries(intent).every(([k, v]) => holds(current[k], v));
  if (keyedByType(intent)) {
    if (!Array.isArray(current)) return false;
    return intent.every((item) =>
      holds(
        current.find((c) => isObject(c) && c.type === item.type),
        item,
      ),
    );
  }
  return isDeepStrictEqual(current, intent);
}

/** Some field of `before` (what the manager applied last) is missing from `intent`: the apply would remove it. */
function drops(before: unknown, intent: unknown): boolean {
  if (isObject(before)) return Object.entries(before).some(([k, v]) => !isObject(intent) || !(k in intent) || drops(v, intent[k]));
  if (keyedByType(before)) {
    return before.some((item) => {
      const kept = Array.isArray(intent) ? intent.find((c) => isObject(c) && c.type === item.type) : undefined;
      return kept === undefined || drops(item, kept);
    });
  }
  return false;
}

/**
 * The `status` to apply for a reconcile's collected `changes`, or undefined when the apply would
 * change nothing: every field it sets already has that value and it drops no field it applied before.
 */
export function statusToApply(object: StoredObject, manager: string, changes: Json): Json | undefined {
  const before = appliedStatus(object, manager);
  const intent = layChanges(before, changes) as Json;
  if (holds(object.status ?? {}, intent) && !drops(before, intent)) return undefined;
  return intent;
}
