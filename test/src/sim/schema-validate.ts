// Validation of a custom resource against its structural schema, with the causes (field, reason, message) kube-apiserver's OpenAPI validator gives.
import { isDeepStrictEqual } from 'node:util';
import { validateObjectMeta } from './object-metadata.ts';
import { isObject } from './patch.ts';
import type { JsonObject, StatusCause } from './status.ts';
import { listKeys, type Structural } from './structural-schema.ts';

/** A value as Go's `%v`/`%q` prints it in a field error: strings quoted, numbers and booleans bare. */
export function goValue(value: unknown): string {
  if (value === null || value === undefined) return '"null"';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[]interface {}{${value.map(goValue).join(', ')}}`;
  const entries = Object.entries(value as JsonObject).map(([k, v]) => `${JSON.stringify(k)}:${goValue(v)}`);
  return `map[string]interface {}{${entries.join(', ')}}`;
}

/** The JSON type name of a value as the OpenAPI validator reports it. */
function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value === 'object' ? 'object' : typeof value;
}

function typeMatches(expected: string, value: unknown): boolean {
  const actual = typeOf(value);
  return expected === actual || (expected === 'number' && actual === 'integer');
}

const FORMATS: Record<string, RegExp> = {
  'date-time': /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  ipv4: /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  byte: /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/,
};

class Collector {
  readonly causes: StatusCause[] = [];
  required(field: string): void {
    this.causes.push({ field, reason: 'FieldValueRequired', message: 'Required value' });
  }
  invalid(field: string, value: unknown, detail: string, reason = 'FieldValueInvalid'): void {
    this.causes.push({ field, reason, message: `Invalid value: ${goValue(value)}: ${detail}` });
  }
}

/**
 * Validates a custom resource (the whole object) against the schema of its version: types, required,
 * enum, pattern, format, bounds, lengths, list-type uniqueness, allOf/anyOf/oneOf/not, and the apiVersion,
 * kind and metadata of embedded resources. The root's metadata is validated elsewhere, as ObjectMeta.
 */
export function validateAgainstSchema(obj: JsonObject, schema: Structural): StatusCause[] {
  const c = new Collector();
  validateObject(obj, schema, '', c, true);
  return c.causes;
}

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function validateNode(value: unknown, s: Structural, path: string, c: Collector): void {
  if (value === null) {
    if (s.type !== undefined && s.nullable !== true)
      c.invalid(path, 'null', `${path} in body must be of type ${s.type}: "null"`, 'FieldValueTypeInvalid');
    return;
  }
  // x-kubernetes-int-or-string is validated as `type: [integer, string]`.
  if (s.intOrString && typeof value !== 'string' && !Number.isInteger(value)) {
    c.invalid(path, typeOf(value), `${path} in body must be of type integer,string: "${typeOf(value)}"`, 'FieldValueTypeInvalid');
    return;
  }
  if (s.type !== undefined && !s.intOrString && !typeMatches(s.type, value)) {
    c.invalid(path, typeOf(value), `${path} in body must be of type ${s.type}: "${typeOf(value)}"`, 'FieldValueTypeInvalid');
    return;
  }
  validateComposition(value, s, path, c);
  if (s.enum !== undefined && !s.enum.some((e) => isDeepStrictEqual(e, value))) {
    const supported = s.enum.map((e) => (typeof e === 'string' ? JSON.stringify(e) : JSON.stringify(JSON.stringify(e)))).join(', ');
    c.causes.push({
      field: path,
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${goValue(value)}: supported values: ${supported}`,
    });
  }
  if (typeof value === 'string') validateString(value, s, path, c);
  else if (typeof value === 'number') validateNumber(value, s, path, c);
  else if (Array.isArray(value)) validateArray(value, s, path, c);
  else if (isObject(value)) validateObject(value, s, path, c, false);
}

function validateComposition(value: unknown, s: Structural, path: string, c: Collector): void {
  const passes = (sub: Structural) => {
    const inner = new Collector();
    validateNode(value, sub, path, inner);
    return inner.causes.length === 0;
  };
  for (const sub of s.allOf ?? []) validateNode(value, sub, path, c);
  if (s.anyOf !== undefined && !s.anyOf.some(passes)) c.invalid(path, value, `${path} in body must validate at least one schema (anyOf)`);
  if (s.oneOf !== undefined && s.oneOf.filter(passes).length !== 1)
    c.invalid(path, value, `${path} in body must validate one and only one schema (oneOf)`);
  if (s.not !== undefined && passes(s.not)) c.invalid(path, value, `${path} in body must not validate the schema (not)`);
}

function validateString(value: string, s: Structural, path: string, c: Collector): void {
  const length = [...value].length;
  if (s.maxLength !== undefined && length > s.maxLength) {
    c.causes.push({ field: path, reason: 'FieldValueTooLong', message: `Too long: may not be more than ${s.maxLength} bytes` });
  }
  if (s.minLength !== undefined && length < s.minLength)
    c.invalid(path, value, `${path} in body should be at least ${s.minLength} chars long`);
  if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(value))
    c.invalid(path, value, `${path} in body should match '${s.pattern}'`);
  const format = s.format === undefined ? undefined : FORMATS[s.format];
  if (format !== undefined && !format.test(value)) {
    c.invalid(path, value, `${path} in body must be of type ${s.format}: ${JSON.stringify(value)}`, 'FieldValueTypeInvalid');
  }
}

function validateNumber(value: number, s: Structural, path: string, c: Collector): void {
  if (s.minimum !== undefined && (s.exclusiveMinimum ? value <= s.minimum : value < s.minimum)) {
    c.invalid(path, value, `${path} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${s.minimum}`);
  }
  if (s.maximum !== undefined && (s.exclusiveMaximum ? value >= s.maximum : value > s.maximum)) {
    c.invalid(path, value, `${path} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${s.maximum}`);
  }
  if (s.multipleOf !== undefined && s.multipleOf !== 0 && !Number.isInteger(value / s.multipleOf)) {
    c.invalid(path, value, `${path} in body should be a multiple of ${s.multipleOf}`);
  }
}

function validateArray(value: unknown[], s: Structural, path: string, c: Collector): void {
  if (s.maxItems !== undefined && value.length > s.maxItems) {
    c.causes.push({
      field: path,
      reason: 'FieldValueTooMany',
      message: `Too many: ${value.length}: must have at most ${s.maxItems} items`,
    });
  }
  if (s.minItems !== undefined && value.length < s.minItems)
    c.invalid(path, value, `${path} in body should have at least ${s.minItems} items`);
  value.forEach((item, i) => {
    if (s.items !== undefined) validateNode(item, s.items, `${path}[${i}]`, c);
  });
  const keys = listKeys(s);
  const identity = (item: unknown) => (s.listType === 'map' && isObject(item) ? Object.fromEntries(keys.map((k) => [k, item[k]])) : item);
  if (s.listType === 'set' || s.listType === 'map' || s.uniqueItems === true) {
    value.forEach((item, i) => {
      if (value.slice(0, i).some((earlier) => isDeepStrictEqual(identity(earlier), identity(item)))) {
        c.causes.push({ field: `${path}[${i}]`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${goValue(identity(item))}` });
      }
    });
  }
}

function validateObject(value: JsonObject, s: Structural, path: string, c: Collector, root: boolean): void {
  if (s.embeddedResource && !root) validateEmbeddedResource(value, path, c);
  for (const key of s.required ?? []) if (!Object.hasOwn(value, key)) c.required(child(path, key));
  const count = Object.keys(value).length;
  if (s.maxProperties !== undefined && count > s.maxProperties) {
    c.causes.push({ field: path, reason: 'FieldValueTooMany', message: `Too many: ${count}: must have at most ${s.maxProperties} items` });
  }
  if (s.minProperties !== undefined && count < s.minProperties)
    c.invalid(path, value, `${path} in body should have at least ${s.minProperties} properties`);
  for (const [key, v] of Object.entries(value)) {
    if ((root || s.embeddedResource) && (key === 'apiVersion' || key === 'kind' || key === 'metadata')) continue;
    const prop = s.properties?.[key] ?? s.additionalProperties;
    if (prop !== undefined) validateNode(v, prop, child(path, key), c);
  }
}

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** apiVersion and kind are required strings of an embedded resource; its metadata is checked as ObjectMeta. */
function validateEmbeddedResource(value: JsonObject, path: string, c: Collector): void {
  for (const key of ['apiVersion', 'kind']) {
    const v = value[key];
    if (v === undefined || v === '') c.required(child(path, key));
    else if (typeof v !== 'string') c.invalid(child(path, key), v, 'must be a string');
  }
  if (typeof value.kind === 'string' && value.kind !== '' && !DNS1035.test(value.kind.toLowerCase())) {
    c.invalid(
      child(path, 'kind'),
      value.kind,
      "may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  if (isObject(value.metadata)) c.causes.push(...validateObjectMeta(value.metadata, child(path, 'metadata'), { requireName: false }));
}
