// The three patch formats a client may send: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.
import { ApiError, errors, type JsonObject } from './status.ts';

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386, the one implementation Conveyor has. */
export { applyMergePatch } from '@conveyor/shared';

function invalidPatch(message: string): ApiError {
  // kube-apiserver answers a JSON patch that cannot be applied (a failed `test` among them) with 422 Invalid.
  return new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${message}`);
}

function parsePointer(path: unknown): string[] {
  if (typeof path !== 'string') throw errors.badRequest('json patch: operation has no "path" string');
  if (path === '') return [];
  if (!path.startsWith('/')) throw errors.badRequest(`json patch: invalid path "${path}": must start with "/"`);
  return path
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

interface Location {
  parent: JsonObject | unknown[];
  key: string;
}

function locate(doc: unknown, tokens: string[], path: string): Location {
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(token, node.length - 1, path)];
    else if (isObject(node) && Object.hasOwn(node, token)) node = node[token];
    else throw invalidPatch(`doc is missing path: "${path}"`);
  }
  if (!Array.isArray(node) && !isObject(node)) throw invalidPatch(`doc is missing path: "${path}"`);
  return { parent: node, key: tokens[tokens.length - 1] ?? '' };
}

function arrayIndex(token: string, max: number, path: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw invalidPatch(`invalid array index "${token}" in path "${path}"`);
  const index = Number(token);
  if (index > max) throw invalidPatch(`array index out of bounds in path "${path}"`);
  return index;
}

function getAt(doc: unknown, path: string): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return doc;
  const { parent, key } = locate(doc, tokens, path);
  if (Array.isArray(parent)) return parent[arrayIndex(key, parent.length - 1, path)];
  if (!Object.hasOwn(parent, key)) throw invalidPatch(`doc is missing path: "${path}"`);
  return parent[key];
}

function removeAt(doc: unknown, path: string): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) throw invalidPatch('cannot remove the whole document');
  const { parent, key } = locate(doc, tokens, path);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(key, parent.length - 1, path), 1)[0];
  if (!Object.hasOwn(parent, key)) throw invalidPatch(`unable to remove nonexistent key: ${key}: missing value`);
  const old = parent[key];
  delete parent[key];
  return old;
}

function addAt(doc: unknown, path: string, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = locate(doc, tokens, path);
  if (Array.isArray(parent)) {
    if (replace) parent[arrayIndex(key, parent.length - 1, path)] = value;
    else if (key === '-') parent.push(value);
    else parent.splice(arrayIndex(key, parent.length, path), 0, value);
  } else {
    if (replace && !Object.hasOwn(parent, key))
      throw invalidPatch(`replace operation does not apply: doc is missing key: ${path}: missing value`);
    parent[key] = value;
  }
  return doc;
}

/** RFC 6902 on a copy of `target`. A failed `test` or a missing path is 422 Invalid; a malformed patch is 400. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw errors.badRequest('json patch: the patch must be a JSON array of operations');
  let doc: unknown = structuredClone(target);
  for (const op of patch) {
    if (!isObject(op)) throw errors.badRequest('json patch: every operation must be an object');
    const path = op.path as string;
    switch (op.op) {
      case 'add':
        doc = addAt(doc, path, structuredClone(op.value), false);
        break;
      case 'replace':
        doc = addAt(doc, path, structuredClone(op.value), true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'test':
        if (!deepEqual(getAt(doc, path), op.value)) throw invalidPatch(`testing value ${path} failed: test failed`);
        break;
      case 'move': {
        const value = removeAt(doc, op.from as string);
        doc = addAt(doc, path, value, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, structuredClone(getAt(doc, op.from as string)), false);
        break;
      default:
        throw errors.badRequest(`json patch: unexpected operation ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}

/**
 * Merge keys of the list fields in the built-in kinds this simulator serves (from the Go struct tags
 * `patchMergeKey`); lists not named here are atomic and replaced whole, as their tags say.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  imagePullSecrets: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ownerReferences: 'uid',
  conditions: 'type',
  hostAliases: 'ip',
};
/** Lists of scalars with `patchStrategy:"merge"`: the patch's values are added to the existing ones. */
const PRIMITIVE_MERGE = new Set(['finalizers']);

const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';

/** Strategic merge patch for the built-in kinds (merge keys above, `$patch`, `$retainKeys`, `$deleteFromPrimitiveList`). */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw errors.badRequest('strategic merge patch: the patch must be a JSON object');
  return mergeMap(isObject(target) ? target : {}, patch);
}

function mergeMap(target: JsonObject, patch: JsonObject): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  if (directive !== undefined && directive !== 'merge')
    throw errors.badRequest(`strategic merge patch: unknown $patch directive ${JSON.stringify(directive)}`);
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith(SET_ELEMENT_ORDER)) continue;
    if (key.startsWith(DELETE_FROM_PRIMITIVE)) {
      const field = key.slice(DELETE_FROM_PRIMITIVE.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(value)) result[field] = current.filter((v) => !value.some((d) => deepEqual(d, v)));
      continue;
    }
    if (value === null) {
      delete result[key];
      continue;
    }
    const current = result[key];
    if (isObject(value)) {
      const merged = mergeMap(isObject(current) ? current : {}, value);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value)) {
      result[key] = mergeList(key, Array.isArray(current) ? current : [], value);
    } else {
      result[key] = value;
    }
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const key of Object.keys(result)) if (!keep.has(key)) delete result[key];
  }
  return result;
}

function mergeList(field: string, current: unknown[], patch: unknown[]): unknown[] {
  if (patch.some((item) => isObject(item) && item.$patch === 'replace')) {
    return structuredClone(patch.filter((item) => !(isObject(item) && item.$patch === 'replace')));
  }
  if (PRIMITIVE_MERGE.has(field)) {
    const result = [...current];
    for (const v of patch) if (!result.some((c) => deepEqual(c, v))) result.push(v);
    return result;
  }
  const mergeKey = MERGE_KEYS[field];
  if (mergeKey === undefined) return structuredClone(patch);
  const result = [...current];
  for (const item of patch) {
    if (!isObject(item)) throw errors.badRequest(`strategic merge patch: ${field} items must be objects with "${mergeKey}"`);
    const index = result.findIndex((c) => isObject(c) && deepEqual(c[mergeKey], item[mergeKey]));
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) {
      const merged = mergeMap(result[index] as JsonObject, item);
      if (merged === undefined) result.splice(index, 1);
      else result[index] = merged;
    } else {
      result.push(mergeMap({}, item));
    }
  }
  return result;
}

export { deepEqual, isObject };
