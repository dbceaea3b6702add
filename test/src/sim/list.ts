// List with label/field selectors, limit and continue tokens that expire, as kube-apiserver pages through etcd.
import type { ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ApiError, errors, type JsonObject } from './status.ts';
import type { Store, StoredObject } from './store.ts';

export interface ListQuery {
  namespace: string;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  limit: number | undefined;
  continueToken: string | undefined;
  resourceVersion: string | undefined;
  resourceVersionMatch: string | undefined;
}

export interface ListPage {
  items: StoredObject[];
  listMeta: JsonObject;
}

interface ContinueToken {
  v: 'meta.k8s.io/v1';
  rv: number;
  start: string;
  /** When the list's first page was served; the token expires `continueTtlMs` later. */
  issued: number;
}

function encodeToken(token: ContinueToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeToken(raw: string): ContinueToken {
  try {
    const token = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as ContinueToken;
    if (
      token.v !== 'meta.k8s.io/v1' ||
      typeof token.rv !== 'number' ||
      typeof token.start !== 'string' ||
      typeof token.issued !== 'number'
    ) {
      throw new Error('unexpected fields');
    }
    return token;
  } catch (error) {
    throw errors.badRequest(`continue key is not valid: ${(error as Error).message}`);
  }
}

export function parseLimit(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw errors.badRequest(`limit: Invalid value: ${JSON.stringify(raw)}: must be a non-negative integer`);
  return n === 0 ? undefined : n;
}

/** Checks `resourceVersion` as a list or watch parameter: unset, "0", or a decimal revision. */
export function parseResourceVersion(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9]+$/.test(raw)) throw errors.badRequest(`resourceVersion: Invalid value: ${JSON.stringify(raw)}: must be a decimal number`);
  return Number(raw);
}

export function listObjects(store: Store, t: ResourceType, query: ListQuery, continueTtlMs: number, now: number): ListPage {
  const labels = parseLabelSelector(query.labelSelector);
  const fields = parseFieldSelector(query.fieldSelector, !t.strategicMerge);
  const match = (obj: StoredObject) => {
    const m = obj.metadata as JsonObject;
    if (labels !== undefined && !labels(m.labels as Record<string, string> | undefined)) return false;
    return fields === undefined || fields({ name: String(m.name), namespace: String(m.namespace ?? '') });
  };
  let after: string | undefined;
  let listRv = store.currentRevision;
  let issued = now;
  if (query.continueToken !== undefined && query.continueToken !== '') {
    if (query.resourceVersion !== undefined && query.resourceVersion !== '') {
      throw errors.badRequest('specifying resource version is not allowed when using continue');
    }
    const token = decodeToken(query.continueToken);
    if (now - token.issued > continueTtlMs) {
      const error = errors.expired(
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
      );
      error.listMeta = { continue: encodeToken({ ...token, rv: -1, issued: now }) };
      throw error;
    }
    after = token.start.endsWith('\u0000') ? token.start.slice(0, -1) : token.start;
    if (token.rv > 0) listRv = token.rv;
    issued = token.issued;
  } else {
    checkListResourceVersion(store, query);
  }
  const prefix = t.namespaced && query.namespace !== '' ? `${query.namespace}/` : '';
  const items: StoredObject[] = [];
  let lastKey: string | undefined;
  let more = false;
  for (const [key, obj] of store.bucket(t.storageKey).scan(prefix, after)) {
    if (!match(obj)) continue;
    if (query.limit !== undefined && items.length === query.limit) {
      more = true;
      break;
    }
    items.push(obj);
    lastKey = key;
  }
  const listMeta: JsonObject = { resourceVersion: String(listRv) };
  if (more && lastKey !== undefined) {
    listMeta.continue = encodeToken({ v: 'meta.k8s.io/v1', rv: listRv, start: `${lastKey}\u0000`, issued });
    if (labels === undefined && fields === undefined) listMeta.remainingItemCount = store.bucket(t.storageKey).countAfter(prefix, lastKey);
  }
  return { items, listMeta };
}

function checkListResourceVersion(store: Store, query: ListQuery): void {
  const rv = parseResourceVersion(query.resourceVersion);
  const match = query.resourceVersionMatch;
  if (match !== undefined && match !== '' && match !== 'NotOlderThan' && match !== 'Exact') {
    throw errors.invalid('ListOptions', 'meta.k8s.io', '', [
      {
        field: 'resourceVersionMatch',
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(match)}: supported values: "Exact", "NotOlderThan"`,
      },
    ]);
  }
  if (match !== undefined && match !== '' && rv === undefined) {
    throw errors.invalid('ListOptions', 'meta.k8s.io', '', [
      {
        field: 'resourceVersionMatch',
        reason: 'FieldValueForbidden',
        message: 'Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
      },
    ]);
  }
  if (rv !== undefined && rv > store.currentRevision) {
    throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${store.currentRevision}`, {
      causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      retryAfterSeconds: 1,
    });
  }
  if (match === 'Exact' && rv !== undefined && rv !== 0 && rv !== store.currentRevision) {
    // Serving an exact past revision needs the old objects; this store keeps only the current ones.
    throw errors.expired(
      `The resourceVersion for the provided list is too old. (requested: ${rv}, exact snapshots are not kept by the simulator)`,
    );
  }
}
