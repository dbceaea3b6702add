// The merge of server-side apply: an applied configuration laid over the live object by schema (maps by key, list-maps by their keys, sets by value, atomic values whole), and the removal of fields its manager stopped applying.
import { objectMetaSchema } from './builtin-schemas.ts';
import { type FieldSet, itemSegment, segments, within } from './field-set.ts';
import { isObject } from './patch.ts';
import type { JsonObject } from './status.ts';
import { DEDUCED, fieldSchema, listKeys, type Structural } from './structural-schema.ts';

const STRING: Structural = { type: 'string' };

function childSchema(s: Structural, key: string, root: boolean): Structural {
  if (root || s.embeddedResource) {
    if (key === 'apiVersion' || key === 'kind') return STRING;
    if (key === 'metadata') return objectMetaSchema();
  }
  return fieldSchema(s, key)?.schema ?? DEDUCED;
}

/** `config` laid over `live`: what structured-merge-diff's merge gives before fields are removed. Neither input is changed. */
export function mergeApplied(live: JsonObject, config: JsonObject, schema: Structural): JsonObject {
  return mergeMaps(live, config, schema, true);
}

function mergeValues(l: unknown, r: unknown, s: Structural): unknown {
  if (r === undefined) return l;
  if (l === undefined) return structuredClone(r);
  if (isObject(l) && isObject(r) && s.mapType !== 'atomic') return mergeMaps(l, r, s, false);
  if (Array.isArray(l) && Array.isArray(r) && (s.listType === 'set' || s.listType === 'map')) return mergeLists(l, r, s);
  return structuredClone(r);
}

function mergeMaps(l: JsonObject, r: JsonObject, s: Structural, root: boolean): JsonObject {
  const out: JsonObject = { ...l };
  for (const [key, value] of Object.entries(r)) out[key] = mergeValues(l[key], value, childSchema(s, key, root));
  return out;
}

/**
 * Associative lists keep the live order for items only the live object has and follow the applied order
 * for shared ones (structured-merge-diff's visitListItems), new applied items where they come in the config.
 */
function mergeLists(l: unknown[], r: unknown[], s: Structural): unknown[] {
  const items = s.items ?? DEDUCED;
  const lKeys = l.map((item, i) => itemSegment(s, item, i));
  const rKeys = r.map((item, i) => itemSegment(s, item, i));
  const left = new Map<string, unknown>();
  lKeys.forEach((k, i) => {
    if (!left.has(k)) left.set(k, l[i]);
  });
  const right = new Map<string, unknown>();
  rKeys.forEach((k, i) => {
    if (!right.has(k)) right.set(k, r[i]);
  });
  const shared = rKeys.filter((k) => left.has(k));
  let nextShared = shared.shift();
  const merged = new Set<string>();
  const out: unknown[] = [];
  let li = 0;
  let ri = 0;
  while (li < lKeys.length || ri < rKeys.length) {
    const lk = lKeys[li];
    if (lk !== undefined && ri < rKeys.length) {
      if (lk === rKeys[ri]) {
        merged.add(lk);
        out.push(mergeValues(left.get(lk), right.get(lk), items));
        li++;
        ri++;
        nextShared = shared.shift();
        continue;
      }
      if (right.has(lk) && nextShared !== undefined && nextShared !== lk) {
        li++;
        continue;
      }
    }
    if (lk !== undefined) {
      if (!right.has(lk)) {
        out.push(l[li]);
        li++;
        continue;
      }
      if (merged.has(lk) || ri >= rKeys.length) {
        li++;
        continue;
      }
    }
    const rk = rKeys[ri] as string;
    merged.add(rk);
    out.push(mergeValues(left.get(rk), right.get(rk), items));
    ri++;
    if (nextShared === rk) nextShared = shared.shift();
  }
  return out;
}

/**
 * Removes from `obj` (in place) the fields in `drop` that no manager still owns: neither the path nor anything
 * below it is in `kept`. Key fields of a list item that stays are never removed.
 */
export function removeUnowned(obj: JsonObject, drop: FieldSet, kept: FieldSet, schema: Structural): void {
  const deepestFirst = [...drop].sort((a, b) => segments(b).length - segments(a).length);
  for (const path of deepestFirst) {
    if ([...kept].some((k) => within(k, path))) continue;
    removePath(obj, path, schema);
  }
}

function removePath(obj: JsonObject, path: string, schema: Structural): void {
  const parts = segments(path);
  let node: unknown = obj;
  let s = schema;
  let root = true;
  for (const [i, segment] of parts.entries()) {
    const last = i === parts.length - 1;
    if (segment.startsWith('f:')) {
      const key = segment.slice(2);
      if (!isObject(node)) return;
      if (last) {
        delete node[key];
        return;
      }
      s = childSchema(s, key, root);
      node = node[key];
    } else {
      if (!Array.isArray(node)) return;
      const list: unknown[] = node;
      const index = list.findIndex((item, j) => itemSegment(s, item, j) === segment);
      if (index < 0) return;
      if (last) {
        list.splice(index, 1);
        return;
      }
      const next = parts[i + 1] ?? '';
      // An item that stays keeps the fields that identify it.
      if (i + 2 === parts.length && next.startsWith('f:') && listKeys(s).includes(next.slice(2))) return;
      node = list[index];
      s = s.items ?? DEDUCED;
    }
    root = false;
  }
}
