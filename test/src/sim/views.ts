// How stored objects are shown: full, or metadata-only (`as=PartialObjectMetadata[List]`), at the version the client asked for.
import { apiVersionOf, type ResourceType } from './resources.ts';
import { errors, type JsonObject } from './status.ts';
import type { StoredObject } from './store.ts';

/** What the client asked for in `Accept`: the object itself, or only its metadata. */
export type View = 'full' | 'metadata';

const META_GROUP = 'meta.k8s.io';
const JSON_TYPES = new Set(['application/json', 'application/*', '*/*']);

/**
 * Server-side content negotiation as kube-apiserver does it for JSON: the first acceptable media range wins;
 * `as=PartialObjectMetadata` fits a single object or a watch, `as=PartialObjectMetadataList` a list.
 */
export function negotiateView(accept: string | undefined, shape: 'object' | 'list' | 'watch'): View {
  if (accept === undefined || accept.trim() === '') return 'full';
  for (const range of accept.split(',')) {
    const [type = '', ...paramParts] = range.split(';').map((p) => p.trim());
    if (!JSON_TYPES.has(type.toLowerCase())) continue;
    const params = new Map(paramParts.map((p) => p.split('=').map((x) => x.trim()) as [string, string]));
    const as = params.get('as');
    if (as === undefined) return 'full';
    if (params.get('g') !== META_GROUP || (params.get('v') !== 'v1' && params.get('v') !== 'v1beta1')) continue;
    if (as === 'PartialObjectMetadata' && shape !== 'list') return 'metadata';
    if (as === 'PartialObjectMetadataList' && shape === 'list') return 'metadata';
  }
  throw errors.notAcceptable(
    `the server does not support the requested media types (${accept}); for metadata-only requests use as=PartialObjectMetadata for objects and watches and as=PartialObjectMetadataList for lists`,
  );
}

export function partialObjectMetadata(obj: StoredObject): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `${META_GROUP}/v1`, metadata: obj.metadata };
}

/** The object as one GET or one watch event shows it. */
export function objectView(t: ResourceType, obj: StoredObject, view: View): StoredObject {
  if (view === 'metadata') return partialObjectMetadata(obj);
  const apiVersion = apiVersionOf(t);
  return obj.apiVersion === apiVersion ? obj : { ...obj, apiVersion };
}

/**
 * A list body, built as a string so 500 items of 2 KB are serialised once. Items of built-in kinds carry
 * no kind/apiVersion (typed lists on a real server), custom resources' items do.
 */
export function listBody(t: ResourceType, items: readonly StoredObject[], listMeta: JsonObject, view: View): string {
  const head =
    view === 'metadata'
      ? `{"kind":"PartialObjectMetadataList","apiVersion":"${META_GROUP}/v1","metadata":${JSON.stringify(listMeta)},"items":[`
      : `{"kind":"${t.listKind}","apiVersion":"${apiVersionOf(t)}","metadata":${JSON.stringify(listMeta)},"items":[`;
  const builtin = t.strategicMerge;
  const parts = items.map((obj) => {
    if (view === 'metadata') return JSON.stringify(partialObjectMetadata(obj));
    if (builtin) {
      const { kind: _k, apiVersion: _a, ...rest } = obj;
      return JSON.stringify(rest);
    }
    return JSON.stringify(objectView(t, obj, view));
  });
  return `${head}${parts.join(',')}]}`;
}

/** A BOOKMARK event's object: only kind, apiVersion and resourceVersion (plus annotations for the end of initial events). */
export function bookmarkObject(t: ResourceType, rv: number, view: View, initialEventsEnd: boolean): JsonObject {
  const metadata: JsonObject = { resourceVersion: String(rv) };
  if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
  return view === 'metadata'
    ? { kind: 'PartialObjectMetadata', apiVersion: `${META_GROUP}/v1`, metadata }
    : { kind: t.kind, apiVersion: apiVersionOf(t), metadata };
}
