// Decoding a body against a structural schema as kube-apiserver does: undeclared fields pruned (x-kubernetes-preserve-unknown-fields honoured) and reported, non-nullable nulls dropped, defaults filled.
import { objectMetaSchema } from './builtin-schemas.ts';
import { isObject } from './patch.ts';
import type { JsonObject } from './status.ts';
import type { Structural } from './structural-schema.ts';

const META_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

/**
 * Removes, in place, every field `schema` does not declare, and returns their paths sorted (`spec.extra`,
 * `spec.items[0].x`, `metadata.bogus`), as kube-apiserver's pruning and ObjectMeta decoding report them. The
 * root and every x-kubernetes-embedded-resource object keep apiVersion and kind, and their metadata is
 * decoded as ObjectMeta: unknown metadata fields go, a null creationTimestamp of an embedded object goes.
 */
export function pruneUnknownFields(obj: JsonObject, schema: Structural | undefined): string[] {
  const paths: string[] = [];
  pruneNode(obj, schema ?? {}, '', paths, true);
  return paths.sort();
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function pruneNode(value: unknown, s: Structural | undefined, path: string, out: string[], resource: boolean): void {
  if (Array.isArray(value)) {
    // Items of a preserving list keep their unknown fields too; a list without an items schema keeps nothing.
    const items =
      s === undefined ? undefined : s.preserveUnknownFields ? s.items && { ...s.items, preserveUnknownFields: true } : (s.items ?? {});
    value.forEach((item, i) => {
      pruneNode(item, items, `${path}[${i}]`, out, false);
    });
    return;
  }
  if (!isObject(value)) return;
  if (s === undefined) return; // inside x-kubernetes-preserve-unknown-fields without a schema: keep everything
  const embedded = resource || s.embeddedResource === true;
  for (const key of Object.keys(value)) {
    if (embedded && META_FIELDS.has(key)) {
      if (key === 'metadata') coerceMetadata(value, join(path, key), out, !resource);
      continue;
    }
    const declared = s.properties?.[key];
    if (declared !== undefined) pruneNode(value[key], declared, join(path, key), out, false);
    else if (s.additionalProperties !== undefined) pruneNode(value[key], s.additionalProperties, join(path, key), out, false);
    else if (s.preserveUnknownFields) continue;
    else {
      out.push(join(path, key));
      delete value[key];
    }
  }
}

function coerceMetadata(owner: JsonObject, path: string, out: string[], embedded: boolean): void {
  const metadata = owner.metadata;
  if (!isObject(metadata)) return;
  pruneNode(metadata, objectMetaSchema(), path, out, false);
  if (embedded && metadata.creationTimestamp === null) delete metadata.creationTimestamp;
}

/** Drops `null` values where the schema neither allows null nor has a default, as kube-apiserver does before defaulting. */
export function pruneNonNullableNulls(value: unknown, s: Structural | undefined): void {
  if (s === undefined) return;
  if (Array.isArray(value)) {
    for (const item of value) pruneNonNullableNulls(item, s.items);
    return;
  }
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const prop = s.properties?.[key] ?? s.additionalProperties;
    if (prop === undefined) continue;
    if (child === null && prop.default === undefined && prop.nullable !== true) delete value[key];
    else pruneNonNullableNulls(child, prop);
  }
}

/** Fills `default`s where a field is absent (or a null the schema does not allow), recursing into what it filled. */
export function applyDefaults(value: unknown, s: Structural | undefined): void {
  if (s === undefined) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (item === null && s.items?.default !== undefined && s.items.nullable !== true) value[i] = structuredClone(s.items.default);
      applyDefaults(value[i], s.items);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, prop] of Object.entries(s.properties ?? {})) {
    if (prop.default === undefined) continue;
    if (!Object.hasOwn(value, key) || (value[key] === null && prop.nullable !== true)) value[key] = structuredClone(prop.default);
  }
  for (const [key, child] of Object.entries(value)) {
    const prop = s.properties?.[key];
    if (prop !== undefined) applyDefaults(child, prop);
    else if (s.additionalProperties !== undefined) {
      const values = s.additionalProperties;
      if (child === null && values.default !== undefined && values.nullable !== true) value[key] = structuredClone(values.default);
      applyDefaults(value[key], values);
    }
  }
}
