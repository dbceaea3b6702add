// Field sets as structured-merge-diff builds them: the paths an object sets, typed by its schema (list and map types), encoded as FieldsV1, and compared between two versions.
import { isDeepStrictEqual } from 'node:util';
import { objectMetaSchema } from './builtin-schemas.ts';
import { isObject } from './patch.ts';
import type { JsonObject } from './status.ts';
import { DEDUCED, fieldSchema, listKeys, type Structural } from './structural-schema.ts';

/**
 * A path is its FieldsV1 segments (`f:spec`, `k:{"type":"Ready"}`, `v:"a"`, `i:0`) joined by SEP; a set is
 * a Set of such strings, each one a member (a field someone set), parents included only when they are members
 * themselves, as in structured-merge-diff.
 */
export type FieldSet = Set<string>;
export const SEP = '\u0000';

export function join(path: string, segment: string): string {
  return path === '' ? segment : `${path}${SEP}${segment}`;
}

export function segments(path: string): string[] {
  return path === '' ? [] : path.split(SEP);
}

/** Paths kube-apiserver never records in managedFields (its stripMetaManager); the first set skips whole subtrees. */
const STRIPPED_SUBTREES = new Set([
  'f:apiVersion',
  'f:kind',
  ...['name', 'namespace', 'creationTimestamp', 'selfLink', 'uid', 'generation', 'managedFields', 'resourceVersion'].map(
    (f) => `f:metadata${SEP}f:${f}`,
  ),
]);
const STRIPPED_MEMBERS = new Set(['f:metadata']);

const STRING: Structural = { type: 'string' };

/** The schema of `key` of an object; the root and embedded resources add apiVersion, kind and ObjectMeta. */
function childSchema(s: Structural, key: string, root: boolean): { schema: Structural; declared: boolean } | undefined {
  if (root || s.embeddedResource) {
    if (key === 'apiVersion' || key === 'kind') return { schema: STRING, declared: true };
    if (key === 'metadata') return { schema: objectMetaSchema(), declared: true };
  }
  return fieldSchema(s, key);
}

function isAtomicMap(s: Structural): boolean {
  return s.mapType === 'atomic';
}

function listTypeOf(s: Structural): 'atomic' | 'set' | 'map' {
  return s.listType ?? 'atomic';
}

/** The segment that names a list item: its keys (`k:`), its value (`v:`), or its index when it has neither. */
export function itemSegment(s: Structural, item: unknown, index: number): string {
  const type = listTypeOf(s);
  if (type === 'set') return `v:${JSON.stringify(item)}`;
  if (type === 'map' && isObject(item)) {
    const keys = [...listKeys(s)].sort();
    const key: JsonObject = {};
    for (const k of keys) if (item[k] !== undefined) key[k] = item[k];
    return `k:${JSON.stringify(key)}`;
  }
  return `i:${index}`;
}

/** `.spec.size`, `.status.conditions[type="Ready"].status`, `.metadata.finalizers[="a"]`: a path as conflicts name it. */
export function describePath(path: string): string {
  return segments(path)
    .map((segment) => {
      const body = segment.slice(2);
      if (segment.startsWith('f:')) return `.${body}`;
      if (segment.startsWith('v:')) return `[=${body}]`;
      if (segment.startsWith('i:')) return `[${body}]`;
      const key = JSON.parse(body) as JsonObject;
      return `[${Object.entries(key)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    })
    .join('');
}

/** Problems that make an applied configuration untypeable (kube-apiserver answers them with a 500). */
export class TypeErrors extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.length === 1 ? (problems[0] as string) : `errors:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

interface Walk {
  /** Collect type errors instead of treating unknown fields as deduced (the applied configuration). */
  strict: boolean;
  problems: string[];
}

/** The fields `obj` sets, as an applied configuration is turned into its manager's set. Throws TypeErrors when strict. */
export function toFieldSet(obj: JsonObject, schema: Structural, strict: boolean): FieldSet {
  const out: FieldSet = new Set();
  const walk: Walk = { strict, problems: [] };
  visitMap(obj, schema, '', out, walk, true);
  if (walk.problems.length > 0) throw new TypeErrors(walk.problems);
  for (const member of STRIPPED_MEMBERS) out.delete(member);
  return out;
}

function visit(value: unknown, s: Structural, path: string, out: FieldSet, walk: Walk): void {
  if (isObject(value)) {
    if (s.type !== undefined && s.type !== 'object' && walk.strict)
      walk.problems.push(`${describePath(path)}: expected ${s.type}, got map`);
    if (isAtomicMap(s)) out.add(path);
    else visitMap(value, s, path, out, walk, false);
    return;
  }
  if (Array.isArray(value)) {
    if (s.type !== undefined && s.type !== 'array' && walk.strict)
      walk.problems.push(`${describePath(path)}: expected ${s.type}, got list`);
    if (listTypeOf(s) === 'atomic') out.add(path);
    else visitList(value, s, path, out, walk);
    return;
  }
  if (walk.strict && value !== null) checkScalar(value, s, path, walk);
  out.add(path);
}

function checkScalar(value: unknown, s: Structural, path: string, walk: Walk): void {
  if (s.intOrString || s.type === undefined) return;
  const ok =
    s.type === 'string'
      ? typeof value === 'string'
      : s.type === 'integer' || s.type === 'number'
        ? typeof value === 'number'
        : s.type === 'boolean'
          ? typeof value === 'boolean'
          : false;
  if (!ok) {
    const expected = s.type === 'integer' || s.type === 'number' ? 'numeric (int or float)' : s.type === 'object' ? 'map' : s.type;
    walk.problems.push(`${describePath(path)}: expected ${expected}, got ${typeof value}`);
  }
}

function visitMap(value: JsonObject, s: Structural, path: string, out: FieldSet, walk: Walk, root: boolean): void {
  for (const [key, child] of Object.entries(value)) {
    const p = join(path, `f:${key}`);
    if (STRIPPED_SUBTREES.has(p)) continue;
    let field = childSchema(s, key, root);
    if (field === undefined) {
      if (walk.strict) {
        walk.problems.push(`${describePath(p)}: field not declared in schema`);
        continue;
      }
      field = { schema: DEDUCED, declared: false };
    }
    visit(child, field.schema, p, out, walk);
    if (child === null || (isObject(child) && Object.keys(child).length === 0) || !field.declared) out.add(p);
  }
}

function visitList(value: unknown[], s: Structural, path: string, out: FieldSet, walk: Walk): void {
  const items = s.items ?? DEDUCED;
  const seen = new Set<string>();
  value.forEach((item, i) => {
    if (walk.strict && listTypeOf(s) === 'map') {
      const missing = listKeys(s).find((k) => !isObject(item) || item[k] === undefined);
      if (missing !== undefined) {
        walk.problems.push(
          `${describePath(path)}: element ${i}: associative list with keys has an element that omits key field ${JSON.stringify(missing)} (and doesn't have default value)`,
        );
        return;
      }
    }
    const p = join(path, itemSegment(s, item, i));
    if (walk.strict && seen.has(p))
      walk.problems.push(`${describePath(path)}: duplicate entries for key ${describePath(p.slice(path.length + 1))}`);
    seen.add(p);
    visit(item, items, p, out, walk);
    out.add(p);
  });
}

/** What changed between two versions of an object, as path sets (parents of new or removed subtrees included). */
export interface Comparison {
  added: FieldSet;
  removed: FieldSet;
  modified: FieldSet;
}

export function compareObjects(before: JsonObject, after: JsonObject, schema: Structural): Comparison {
  const c: Comparison = { added: new Set(), removed: new Set(), modified: new Set() };
  compareMaps(before, after, schema, '', c, true);
  for (const member of STRIPPED_MEMBERS) for (const set of [c.added, c.removed, c.modified]) set.delete(member);
  return c;
}

function compareNodes(l: unknown, r: unknown, s: Structural, path: string, c: Comparison): void {
  if (l === undefined) collect(r, s, path, c.added);
  else if (r === undefined) collect(l, s, path, c.removed);
  else if (isObject(l) && isObject(r) && !isAtomicMap(s)) compareMaps(l, r, s, path, c, false);
  else if (Array.isArray(l) && Array.isArray(r) && listTypeOf(s) !== 'atomic') compareLists(l, r, s, path, c);
  else if (!isDeepStrictEqual(l, r)) c.modified.add(path);
}

function compareMaps(l: JsonObject, r: JsonObject, s: Structural, path: string, c: Comparison, root: boolean): void {
  for (const key of new Set([...Object.keys(l), ...Object.keys(r)])) {
    const p = join(path, `f:${key}`);
    if (STRIPPED_SUBTREES.has(p)) continue;
    compareNodes(l[key], r[key], childSchema(s, key, root)?.schema ?? DEDUCED, p, c);
  }
}

function compareLists(l: unknown[], r: unknown[], s: Structural, path: string, c: Comparison): void {
  const items = s.items ?? DEDUCED;
  const left = new Map(l.map((item, i) => [itemSegment(s, item, i), item]));
  const right = new Map(r.map((item, i) => [itemSegment(s, item, i), item]));
  for (const segment of new Set([...left.keys(), ...right.keys()])) {
    compareNodes(left.get(segment), right.get(segment), items, join(path, segment), c);
  }
}

/** Every path of a subtree, the subtree's own path included: what a comparison counts as added or removed. */
function collect(value: unknown, s: Structural, path: string, out: FieldSet): void {
  out.add(path);
  if (isObject(value) && !isAtomicMap(s)) {
    for (const [key, child] of Object.entries(value))
      collect(child, childSchema(s, key, false)?.schema ?? DEDUCED, join(path, `f:${key}`), out);
  } else if (Array.isArray(value) && listTypeOf(s) !== 'atomic') {
    value.forEach((item, i) => {
      collect(item, s.items ?? DEDUCED, join(path, itemSegment(s, item, i)), out);
    });
  }
}

/** FieldsV1 JSON of a set: `{"f:spec":{"f:size":{}}}`, with `".": {}` where a member also has members below it. */
export function encodeFieldsV1(set: FieldSet): JsonObject {
  const root: JsonObject = {};
  for (const path of [...set].sort()) {
    let node = root;
    for (const segment of segments(path)) {
      const next = (node[segment] as JsonObject | undefined) ?? {};
      node[segment] = next;
      node = next;
    }
    node['.'] = {};
  }
  return tidy(root);
}

/** Turns the `"."` marks of leaves into empty objects, as FieldsV1 writes a member without members below it. */
function tidy(node: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [segment, child] of Object.entries(node)) {
    if (segment === '.') continue;
    const c = child as JsonObject;
    const inner = tidy(c);
    out[segment] = Object.keys(inner).length === 0 ? {} : Object.hasOwn(c, '.') ? { '.': {}, ...inner } : inner;
  }
  return out;
}

export function decodeFieldsV1(fields: unknown, prefix = '', out: FieldSet = new Set()): FieldSet {
  if (!isObject(fields)) return out;
  for (const [segment, child] of Object.entries(fields)) {
    if (segment === '.') {
      if (prefix !== '') out.add(prefix);
      continue;
    }
    const path = join(prefix, segment);
    if (!isObject(child) || Object.keys(child).length === 0) out.add(path);
    else decodeFieldsV1(child, path, out);
  }
  return out;
}

/** Whether `path` is `ancestor` or lies below it. */
export function within(path: string, ancestor: string): boolean {
  return path === ancestor || path.startsWith(`${ancestor}${SEP}`);
}
