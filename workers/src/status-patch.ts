// Collects a reconcile's status changes as JSON merge patches and decides whether, and what, to write once at the end.
import { isDeepStrictEqual } from 'node:util';
import { applyMergePatch } from '@conveyor/shared';

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One merge patch with the effect of applying `first`, then `second` (nulls are kept: they still delete). */
export function composeMergePatches(first: Json, second: Json): Json {
  const result: Json = { ...first };
  for (const [key, value] of Object.entries(second)) {
    const earlier = result[key];
    result[key] = isPlainObject(value) && isPlainObject(earlier) ? composeMergePatches(earlier, value) : structuredClone(value);
  }
  return result;
}

/** The status changes of one reconcile. */
export class StatusCollector {
  private patch: Json | undefined;

  add(patch: unknown): void {
    if (!isPlainObject(patch)) throw new TypeError(`patchStatus needs an object, got ${patch === null ? 'null' : typeof patch}`);
    this.patch = this.patch === undefined ? structuredClone(patch) : composeMergePatches(this.patch, patch);
  }

  /** Every change collected, as one merge patch; undefined when there was none. */
  collected(): Json | undefined {
    return this.patch === undefined ? undefined : structuredClone(this.patch);
  }

  /** The merge patch to send for `status`, or undefined when it would leave `current` as it is. */
  pendingFor(current: unknown): Json | undefined {
    if (this.patch === undefined) return undefined;
    const before = isPlainObject(current) ? current : {};
    return isDeepStrictEqual(applyMergePatch(before, this.patch), before) ? undefined : this.patch;
  }
}
