// Decoding a written object as kube-apiserver does: unknown fields pruned and answered per `fieldValidation` (Ignore, Warn with a Warning header, Strict), custom resources defaulted.
import type { ResourceType } from './resources.ts';
import { applyDefaults, pruneNonNullableNulls, pruneUnknownFields } from './schema-decoding.ts';
import { ApiError, errors, type JsonObject } from './status.ts';

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

/** `fieldValidation` as sent; absent or empty is Warn, kube-apiserver's default since v1.27. */
export function parseFieldValidation(
  value: string | null,
  optionsKind: 'CreateOptions' | 'UpdateOptions' | 'PatchOptions',
): FieldValidation {
  if (value === null || value === '') return 'Warn';
  if (value === 'Ignore' || value === 'Warn' || value === 'Strict') return value;
  throw errors.invalid(optionsKind, 'meta.k8s.io', '', [
    {
      field: 'fieldValidation',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: "", "Ignore", "Strict", "Warn"`,
    },
  ]);
}

/** What the decoder needs to know about the request. */
export interface DecodeContext {
  fieldValidation: FieldValidation;
  /** Warning header texts collected for the response. */
  warnings: string[];
}

/**
 * A copy of `obj` as the server stores it: fields the schema does not declare dropped (a custom resource's
 * non-nullable nulls too, and its defaults filled). Unknown fields are ignored, warned about (`unknown field
 * "spec.x"`) or, with Strict, refused: 400 for a body that is the object, 422 (field `patch`) for a patch result.
 */
export function decodeObject(t: ResourceType, obj: JsonObject, ctx: DecodeContext, source: 'body' | 'patch'): JsonObject {
  const copy = structuredClone(obj);
  if (t.schema === undefined) return copy;
  const unknown = pruneUnknownFields(copy, t.schema);
  if (t.customResource) {
    pruneNonNullableNulls(copy, t.schema);
    applyDefaults(copy, t.schema);
  }
  if (unknown.length === 0 || ctx.fieldValidation === 'Ignore') return copy;
  const problems = unknown.map((path) => `unknown field ${JSON.stringify(path)}`);
  if (ctx.fieldValidation === 'Warn') {
    ctx.warnings.push(...problems);
    return copy;
  }
  const strict = `strict decoding error: ${problems.join(', ')}`;
  if (source === 'patch') {
    const value = JSON.stringify(JSON.stringify(obj));
    throw new ApiError(422, 'Invalid', ` "" is invalid: patch: Invalid value: ${value}: ${strict}`, {
      causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${value}: ${strict}`, field: 'patch' }],
    });
  }
  const version = String(obj.apiVersion ?? '')
    .split('/')
    .pop();
  throw errors.badRequest(`${String(obj.kind)} in version ${JSON.stringify(version)} cannot be handled as a ${t.kind}: ${strict}`);
}

/** The `Warning` header values for these texts: `299 - "unknown field \"spec.x\""`. */
export function warningHeaders(warnings: readonly string[]): string[] {
  return [...new Set(warnings)].map((text) => `299 - ${JSON.stringify(text)}`);
}
