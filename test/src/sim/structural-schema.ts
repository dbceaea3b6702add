// Structural schemas: a CRD version's openAPIV3Schema read the way kube-apiserver reads it, the one shape pruning, defaulting, validation and server-side apply walk.
import { isObject } from './patch.ts';
import type { JsonObject } from './status.ts';

/**
 * One node of a structural schema, with the `x-kubernetes-*` extensions under their own names. Built-in kinds
 * get the same shape (see builtin-schemas.ts), so pruning and server-side apply have one walker for both.
 */
export interface Structural {
  type?: string;
  properties?: Record<string, Structural>;
  /** The schema of map values when the object is a map (`additionalProperties: {...}`). */
  additionalProperties?: Structural;
  items?: Structural;
  nullable?: boolean;
  /** Present when the schema has a `default` (which may itself be null... but structural schemas forbid that). */
  default?: unknown;
  preserveUnknownFields?: boolean;
  embeddedResource?: boolean;
  intOrString?: boolean;
  /** Server-side apply: how a list merges (`atomic` when absent) and its keys when it is a `map`. */
  listType?: 'atomic' | 'set' | 'map';
  listMapKeys?: string[];
  /** Server-side apply: whether an object is replaced whole (`atomic`) or merged key by key. */
  mapType?: 'atomic' | 'granular';
  /** Value validations, enforced on custom resources only. */
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  allOf?: Structural[];
  anyOf?: Structural[];
  oneOf?: Structural[];
  not?: Structural;
}

/** Stands for a value of unknown shape under x-kubernetes-preserve-unknown-fields: maps merge key by key, lists are atomic. */
export const DEDUCED: Structural = Object.freeze({ preserveUnknownFields: true });

const NUMBER_KEYS = [
  'minimum',
  'maximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
] as const;

/** Reads an openAPIV3Schema (wire names) into a Structural; unknown keywords are ignored. */
export function compileSchema(raw: unknown): Structural {
  if (!isObject(raw)) return {};
  const s: Structural = {};
  if (typeof raw.type === 'string') s.type = raw.type;
  if (isObject(raw.properties)) {
    s.properties = {};
    for (const [key, child] of Object.entries(raw.properties)) s.properties[key] = compileSchema(child);
  }
  if (isObject(raw.additionalProperties)) s.additionalProperties = compileSchema(raw.additionalProperties);
  if (isObject(raw.items)) s.items = compileSchema(raw.items);
  if (raw.nullable === true) s.nullable = true;
  if (Object.hasOwn(raw, 'default')) s.default = raw.default;
  if (raw['x-kubernetes-preserve-unknown-fields'] === true) s.preserveUnknownFields = true;
  if (raw['x-kubernetes-embedded-resource'] === true) s.embeddedResource = true;
  if (raw['x-kubernetes-int-or-string'] === true) s.intOrString = true;
  const listType = raw['x-kubernetes-list-type'];
  if (listType === 'atomic' || listType === 'set' || listType === 'map') s.listType = listType;
  const keys = raw['x-kubernetes-list-map-keys'];
  if (Array.isArray(keys)) s.listMapKeys = keys.filter((k): k is string => typeof k === 'string');
  const mapType = raw['x-kubernetes-map-type'];
  if (mapType === 'atomic' || mapType === 'granular') s.mapType = mapType;
  if (Array.isArray(raw.required)) s.required = raw.required.filter((k): k is string => typeof k === 'string');
  if (Array.isArray(raw.enum)) s.enum = raw.enum;
  if (typeof raw.pattern === 'string') s.pattern = raw.pattern;
  if (typeof raw.format === 'string') s.format = raw.format;
  for (const key of NUMBER_KEYS) if (typeof raw[key] === 'number') s[key] = raw[key] as number;
  if (raw.exclusiveMinimum === true) s.exclusiveMinimum = true;
  if (raw.exclusiveMaximum === true) s.exclusiveMaximum = true;
  if (raw.uniqueItems === true) s.uniqueItems = true;
  for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = raw[key];
    if (Array.isArray(list)) s[key] = list.map(compileSchema);
  }
  if (isObject(raw.not)) s.not = compileSchema(raw.not);
  return s;
}

/** The openAPIV3Schema of one version of a CRD (the version's own, else the CRD-wide legacy `spec.validation`). */
export function crdVersionSchema(crd: JsonObject, version: JsonObject): Structural | undefined {
  const perVersion = isObject(version.schema) ? version.schema.openAPIV3Schema : undefined;
  const spec = isObject(crd.spec) ? crd.spec : {};
  const legacy = isObject(spec.validation) ? spec.validation.openAPIV3Schema : undefined;
  const raw = perVersion ?? legacy;
  return isObject(raw) ? compileSchema(raw) : undefined;
}

/** The schema of `key` inside an object node: declared, additionalProperties, deduced (preserved) or undefined (unknown). */
export function fieldSchema(s: Structural, key: string): { schema: Structural; declared: boolean } | undefined {
  const declared = s.properties?.[key];
  if (declared !== undefined) return { schema: declared, declared: true };
  if (s.additionalProperties !== undefined) return { schema: s.additionalProperties, declared: false };
  if (s.preserveUnknownFields) return { schema: DEDUCED, declared: false };
  return undefined;
}

/** The keys that identify an item of a `listType: map` list. */
export function listKeys(s: Structural): string[] {
  return s.listType === 'map' ? (s.listMapKeys ?? []) : [];
}
