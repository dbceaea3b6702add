// POST /v1/reconcile: an authenticated, authorised, validated request to reconcile objects now.
//
// Expected flow: bearer token → authenticate (401 if unknown) → size cap (413) → `application/json`
// only (415) → JSON body validated, names by the resource's own Kubernetes rule (400 naming the
// field) → every object authorised (403 naming the first refused) → one batch enqueue with reason
// `manual` → 202. One audit line per call, never with the token.
// Guarantees: an invalid or unauthorised body enqueues nothing; nothing here answers 500 for bad
// input. When the token cannot be checked (TokenReview or SubjectAccessReview failed, or took longer
// than `timeoutMs`) or the queue cannot be reached in time, the caller gets 503 with Retry-After and
// a fixed message — never the API server's or Redis' words, which go to the log.
// Tracing: a W3C `traceparent` header is continued — the call gets a `conveyor.api.reconcile` span under
// it, and the requests it enqueues carry that span's context (the caller's own when tracing is off here),
// so the caller's trace runs on into the reconciles.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ATTR,
  contextFromTraceparent,
  errorMessage,
  failSpan,
  formatKey,
  InvalidKeyError,
  keyOf,
  type Logger,
  type ObjectKey,
  type ResourceRef,
  SPAN,
  traceparentOf,
  tracer,
  validateObjectName,
} from '@conveyor/shared';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { z } from 'zod';
import type { Authenticator, Authorizer } from './auth.ts';

export const RECONCILE_PATH = '/v1/reconcile';

type ApiResource = ResourceRef & { namespaced: boolean };

export interface ReconcileApiOptions {
  /** The controller's resource: the only one this API reconciles (or give `resources`). */
  resource?: ApiResource;
  /**
   * The resources of several controllers: the only ones this API reconciles. With one resource, the body's `resource`
   * may be left out; with several different ones, it says which.
   */
  resources?: readonly ApiResource[];
  auth: Authenticator & Authorizer;
  /** Enqueues with reason `manual`: the same path watch events take; `trace` is the `traceparent` the requests carry. */
  enqueue(keys: readonly ObjectKey[], trace: string | undefined): Promise<void>;
  audit: Logger;
  /** @defaultValue 64 KiB */
  maxBodyBytes?: number;
  /** @defaultValue 1000 */
  maxObjects?: number;
  /** Longest wait for authentication, authorisation and the enqueue, each (api.timeout). @defaultValue 5000 */
  timeoutMs?: number;
}

/** Thrown by `enqueue` on a replica that does not lead: the caller retries and reaches the leader through the Service. */
export class NotActiveError extends Error {
  constructor() {
    super('this replica is a standby, not the leader; retry');
    this.name = 'NotActiveError';
  }
}

/** What a caller is told when the request cannot be served now; the cause goes to the log. */
const UNAVAILABLE = {
  auth: 'cannot check the token now; try again later',
  enqueue: 'cannot enqueue now; try again later',
} as const;

/** A dependency failed or was too slow: 503 with a fixed message, the cause logged by the handler. */
class Unavailable extends Error {
  readonly publicMessage: string;
  constructor(publicMessage: string, cause: unknown) {
    super(errorMessage(cause), { cause });
    this.publicMessage = publicMessage;
  }
}

const objectRef = z.strictObject({
  namespace: z.string().optional(),
  name: z.string().min(1, 'must not be empty'),
});

/** `{ namespace, name }` for one object, or `{ objects: [{ namespace, name }, …] }`; `resource` optional. */
const oneSchema = z.strictObject({
  resource: z.string().optional(),
  namespace: z.string().optional(),
  name: z.string().min(1, 'must not be empty'),
});
const manySchema = z.strictObject({ resource: z.string().optional(), objects: z.array(objectRef).min(1, 'must list at least one object') });

type Reply = { status: number; body: Record<string, unknown>; headers?: Record<string, string> };

export function createReconcileApi(options: ReconcileApiOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  /** `work`, or Unavailable(publicMessage) when it fails (errors of the `pass` classes excepted) or takes longer than the timeout. */
  const bounded = async <T>(step: string, publicMessage: string, work: () => Promise<T>, pass: (new () => Error)[] = []): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${step}: no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([work(), late]);
    } catch (error) {
      if (pass.some((type) => error instanceof type)) throw error;
      throw new Unavailable(publicMessage, error);
    } finally {
      clearTimeout(timer);
    }
  };
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const maxObjects = options.maxObjects ?? 1_000;
  const pickResource = resourcePicker(options.resources ?? (options.resource === undefined ? [] : [options.resource]));

  return async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== RECONCILE_PATH) return false;
    const audit: Record<string, unknown> = { audit: 'manual-reconcile', remote: req.socket.remoteAddress };
    const incoming = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    const parent = contextFromTraceparent(incoming);
    const attributes = { [ATTR.method]: req.method ?? '', [ATTR.path]: RECONCILE_PATH };
    const span = tracer().startSpan(SPAN.manualReconcile, { kind: SpanKind.SERVER, attributes }, parent);
    const trace = traceparentOf(span) ?? (parent === ROOT_CONTEXT ? undefined : incoming?.trim());
    const reply = await handle(req, audit, trace).catch((error: unknown): Reply => {
      req.resume();
      const publicMessage =
        error instanceof Unavailable ? error.publicMessage : error instanceof NotActiveError ? error.message : UNAVAILABLE.enqueue;
      audit.err = errorMessage(error);
      return { status: 503, body: { error: publicMessage }, headers: { 'retry-after': '5' } };
    });
    // A 503's cause (the API server's or Redis' own words) is logged here, never sent to the caller.
    options.audit[reply.status >= 500 ? 'warn' : 'info']({ ...audit, status: reply.status }, 'manual reconcile request');
    span.setAttribute(ATTR.status, reply.status);
    if (typeof audit.objects === 'number') span.setAttribute(ATTR.objects, audit.objects);
    if (reply.status >= 500) failSpan(span, String(reply.body.error));
    span.end();
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.body));
    return true;
  };

  async function handle(req: IncomingMessage, audit: Record<string, unknown>, trace: string | undefined): Promise<Reply> {
    if (req.method !== 'POST') return { status: 405, body: { error: 'use POST' }, headers: { allow: 'POST' } };
    const header = req.headers.authorization ?? '';
    const token = /^Bearer (\S+)$/i.exec(header)?.[1];
    if (token === undefined) {
      drain(req);
      return { status: 401, body: { error: 'missing bearer token' }, headers: { 'www-authenticate': 'Bearer' } };
    }
    const identity = await bounded('authentication', UNAVAILABLE.auth, () => options.auth.authenticate(token));
    if (identity === undefined) {
      drain(req);
      return { status: 401, body: { error: 'unknown or expired token' }, headers: { 'www-authenticate': 'Bearer' } };
    }
    audit.user = identity.user;
    audit.via = identity.via;

    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      drain(req);
      return { status: 413, body: { error: `body larger than ${maxBodyBytes} bytes` } };
    }
    // Exactly application/json (parameters such as charset aside): not application/json-patch+json and kin.
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase();
    if (type !== 'application/json') {
      drain(req);
      return { status: 415, body: { error: 'content-type must be application/json' } };
    }
    const text = await readBody(req, maxBodyBytes);
    if (text === undefined) return { status: 413, body: { error: `body larger than ${maxBodyBytes} bytes` } };

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return { status: 400, body: { error: `body is not JSON: ${errorMessage(error)}`, field: '' } };
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return { status: 400, body: { error: 'body must be a JSON object with namespace and name, or objects', field: '' } };
    }
    // Judge the body by the shape it aims at, so the error names the field the caller got wrong.
    const parsed = 'objects' in json ? manySchema.safeParse(json) : oneSchema.safeParse(json);
    if (!parsed.success) return badRequest(parsed.error);
    const body = parsed.data;
    const resource = pickResource(body.resource);
    if (typeof resource === 'string') return { status: 400, body: { error: resource, field: 'resource' } };
    const refs = 'objects' in body ? body.objects : [{ namespace: body.namespace, name: body.name }];
    if (refs.length > maxObjects) return { status: 413, body: { error: `at most ${maxObjects} objects per request`, field: 'objects' } };

    const keys: ObjectKey[] = [];
    for (const [index, ref] of refs.entries()) {
      const prefix = 'objects' in body ? `objects.${index}.` : '';
      if (resource.namespaced && (ref.namespace === undefined || ref.namespace === '')) {
        return { status: 400, body: { error: 'a namespaced resource needs a namespace', field: `${prefix}namespace` } };
      }
      if (!resource.namespaced && ref.namespace !== undefined && ref.namespace !== '') {
        return { status: 400, body: { error: 'a cluster-scoped resource takes no namespace', field: `${prefix}namespace` } };
      }
      const key = keyOf(resource, { namespace: ref.namespace, name: ref.name });
      try {
        validateObjectName(key);
      } catch (error) {
        if (!(error instanceof InvalidKeyError)) throw error;
        return { status: 400, body: { error: error.message, field: `${prefix}${error.part === 'namespace' ? 'namespace' : 'name'}` } };
      }
      keys.push(key);
    }
    for (const key of keys) {
      if (!(await bounded('authorisation', UNAVAILABLE.auth, () => options.auth.authorize(identity, key)))) {
        return { status: 403, body: { error: `${identity.user} may not update ${formatKey(key)}` } };
      }
    }
    await bounded('enqueue', UNAVAILABLE.enqueue, () => options.enqueue(keys, trace), [NotActiveError]);
    audit.objects = keys.length;
    audit.first = formatKey(keys[0] as ObjectKey);
    return { status: 202, body: { accepted: keys.length, keys: keys.slice(0, 100).map(formatKey) } };
  }
}

/**
 * The resource a body names (`widgets` or `widgets.example.com`), or the only one when it names none; else the
 * problem, in words for the caller.
 */
function resourcePicker(resources: readonly ApiResource[]): (name: string | undefined) => ApiResource | string {
  const byName = new Map<string, ApiResource>();
  const fullNames: string[] = [];
  for (const resource of resources) {
    const full = resource.group === '' ? resource.plural : `${resource.plural}.${resource.group}`;
    if (!fullNames.includes(full)) fullNames.push(full);
    byName.set(full, resource);
    if (!byName.has(resource.plural)) byName.set(resource.plural, resource);
  }
  const which = fullNames.length === 1 ? fullNames[0] : `one of ${fullNames.join(', ')}`;
  return (name) => {
    if (name === undefined)
      return fullNames.length === 1 ? (resources[0] as ApiResource) : `resource: missing; this API reconciles ${which}`;
    return byName.get(name) ?? `unknown resource "${name}"; this API reconciles ${which}`;
  };
}

function badRequest(error: z.ZodError): Reply {
  const issue = error.issues[0];
  if (issue === undefined) return { status: 400, body: { error: 'invalid body', field: '' } };
  const field = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys].join('.') : issue.path.join('.');
  const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message;
  return { status: 400, body: { error: `${field === '' ? '' : `${field}: `}${message}`, field } };
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      drain(req);
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function drain(req: IncomingMessage): void {
  req.resume();
}
