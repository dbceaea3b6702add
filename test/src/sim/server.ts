// The HTTP front of the simulator: routing, authentication, authorization, faults, counters, then the object API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { type Authenticator, type Authorizer, forbiddenMessage, type RequestAttributes, type SimUser } from './auth.ts';
import { type FaultState, parseFaultPatch } from './faults.ts';
import { listObjects, parseLimit } from './list.ts';
import { managerFromUserAgent } from './managed-fields.ts';
import { type DeleteOptions, groupResource, type ObjectApi, type Subresource, type WriteContext } from './objects.ts';
import { openApiGroupVersion, openApiIndex, typesOfOpenApiPath } from './openapi.ts';
import { isObject, PATCH_TYPES } from './patch.ts';
import type { RequestLog } from './request-log.ts';
import { apiGroupList, apiResourceList, type ResourceType } from './resources.ts';
import { ApiError, errors, type JsonObject, statusBody, successStatus } from './status.ts';
import type { Store } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';
import { listBody, negotiateView, objectView } from './views.ts';
import { validateWatchQuery, type WatchQuery, type WatchSettings, WatchStream } from './watch.ts';

export interface ServerParts {
  store: Store;
  types: TypeRegistry;
  objects: ObjectApi;
  faults: FaultState;
  authn: Authenticator;
  authz: Authorizer;
  watches: Set<WatchStream>;
  watchSettings: WatchSettings;
  /** Every list and watch request, for tests (`GET /_sim/requests`). */
  requestLog: RequestLog;
  continueTtlMs: number;
  now: () => number;
  /** Fault actions the control endpoints trigger. */
  control: { closeWatches(): number; compactHistory(): void; stats(): { objects: number; resourceVersion: number; openWatches: number } };
}

const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-conveyor-sim',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'n/a',
  compiler: 'conveyor-sim',
  platform: `${process.platform}/${process.arch}`,
};

interface ResourceRequest {
  t: ResourceType;
  verb: string;
  namespace: string;
  name: string;
  subresource: Subresource;
  /** Counter and authorization label: plural with `/subresource`. */
  resourceLabel: string;
}

function send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'BadRequest', 'Request entity too large: limit is 3145728');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Decodes a create/update body: JSON or YAML, as kube-apiserver accepts; protobuf and CBOR are not served here. */
function parseObjectBody(req: IncomingMessage, text: string): unknown {
  const type = mediaType(req.headers['content-type']);
  if (type === '' || type === 'application/json') return parseJson(text);
  if (type === 'application/yaml') {
    try {
      return parseYaml(text);
    } catch (error) {
      throw errors.badRequest(`error decoding YAML: ${(error as Error).message}`);
    }
  }
  throw errors.unsupportedMediaType(type, ['application/json', 'application/yaml']);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
  }
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function boolParam(params: URLSearchParams, name: string): boolean | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  return v === 'true' || v === '1';
}

function optional(params: URLSearchParams, name: string): string | undefined {
  return params.get(name) ?? undefined;
}

export function createRequestHandler(parts: ServerParts): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(parts, req, res).catch((error: unknown) => {
      const apiError = error instanceof ApiError ? error : errors.internal((error as Error).message);
      if (!res.headersSent) send(res, apiError.code, apiError.toStatus(), apiError.headers);
      else res.destroy();
    });
  };
}

async function handle(parts: ServerParts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://simulator');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (path === '/healthz' || path === '/livez' || path === '/readyz')
    return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
  if (path === '/version') return send(res, 200, VERSION_INFO);
  const user = parts.authn.fromHeader(req.headers.authorization);
  if (user === undefined && !PUBLIC_PATHS.has(path)) throw errors.unauthorized();
  const authed = user as SimUser;
  if (path.startsWith('/_sim/')) return control(parts, req, res, path);
  if (path === '/api')
    return send(res, 200, {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.headers.host ?? '' }],
    });
  if (path === '/apis') return send(res, 200, apiGroupList(parts.types.all()));
  if (path === '/openapi/v3') return send(res, 200, openApiIndex(parts.types.all()));
  if (path.startsWith('/openapi/v3/')) {
    const types = typesOfOpenApiPath(parts.types.all(), path);
    if (types === undefined) throw notFoundPath();
    return send(res, 200, openApiGroupVersion(types));
  }
  const segments = path.split('/').slice(1).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 2) {
    group = '';
    version = segments[1] as string;
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3) {
    group = segments[1] as string;
    version = segments[2] as string;
    rest = segments.slice(3);
  } else if (segments[0] === 'apis' && segments.length === 2) {
    const list = apiGroupList(parts.types.all()).groups as JsonObject[];
    const found = list.find((g) => g.name === segments[1]);
    if (found === undefined) throw notFoundPath();
    return send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...found });
  } else {
    throw notFoundPath();
  }
  const inGroupVersion = parts.types.inGroupVersion(group, version);
  if (inGroupVersion.length === 0) throw notFoundPath();
  if (rest.length === 0) return send(res, 200, apiResourceList(group === '' ? version : `${group}/${version}`, inGroupVersion));
  const request = route(parts, req, url, group, version, rest);
  const attrs: RequestAttributes = {
    verb: request.verb,
    apiGroup: group,
    resource: request.resourceLabel,
    namespace: request.namespace,
    name: request.name,
  };
  let code = 200;
  const outcome: ReadOutcome = { expired: false, items: undefined };
  try {
    const decision = parts.authz.decide(authed, attrs);
    if (!decision.allowed)
      throw errors.forbidden(forbiddenMessage(authed.username, attrs), groupResource(request.t), request.name || undefined);
    await parts.faults.waitWhilePaused();
    const latency = parts.faults.settings.latencyMs;
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const fault = parts.faults.decide(request.verb, request.resourceLabel);
    if (fault?.kind === 'throttle') throw errors.tooManyRequests(fault.retryAfterSeconds);
    if (fault?.kind === 'error') throw errors.internal('injected by the simulator');
    code = await serve(parts, req, res, url, request, authed, outcome);
  } catch (error) {
    code = error instanceof ApiError ? error.code : 500;
    throw error;
  } finally {
    parts.faults.count(request.verb, request.resourceLabel, code);
    if (request.verb === 'list' || request.verb === 'watch') logRead(parts, req, url, request, code, outcome);
  }
}

/** What a list or watch turned out to be, for the request log. */
interface ReadOutcome {
  expired: boolean;
  items: number | undefined;
}

function logRead(parts: ServerParts, req: IncomingMessage, url: URL, request: ResourceRequest, code: number, outcome: ReadOutcome): void {
  const params = url.searchParams;
  const limit = params.get('limit');
  parts.requestLog.add({
    at: parts.now(),
    verb: request.verb as 'list' | 'watch',
    path: url.pathname,
    resource: request.resourceLabel,
    namespace: request.namespace,
    accept: req.headers.accept ?? '',
    limit: limit === null || limit === '' ? undefined : Number(limit),
    continued: (params.get('continue') ?? '') !== '',
    resourceVersion: optional(params, 'resourceVersion'),
    sendInitialEvents: boolParam(params, 'sendInitialEvents') === true,
    allowWatchBookmarks: boolParam(params, 'allowWatchBookmarks') === true,
    labelSelector: optional(params, 'labelSelector'),
    fieldSelector: optional(params, 'fieldSelector'),
    code,
    items: outcome.items,
    expired: outcome.expired,
  });
}

function notFoundPath(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

function route(parts: ServerParts, req: IncomingMessage, url: URL, group: string, version: string, rest: string[]): ResourceRequest {
  let namespace = '';
  let tail = rest;
  const namespacesSubresource = rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize');
  if (group === '' && rest[0] === 'namespaces' && rest.length >= 3 && !namespacesSubresource) {
    namespace = rest[1] as string;
    tail = rest.slice(2);
  } else if (group !== '' && rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1] as string;
    tail = rest.slice(2);
  }
  const [plural = '', name = '', sub, ...extra] = tail;
  const t = parts.types.find(group, version, plural);
  if (t === undefined || extra.length > 0) throw notFoundPath();
  if (namespace !== '' && !t.namespaced) throw notFoundPath();
  if (sub !== undefined && sub !== 'status' && sub !== 'scale') throw notFoundPath();
  if (sub === 'status' && !t.statusSubresource) throw notFoundPath();
  if (sub === 'scale' && t.scale === undefined) throw notFoundPath();
  const method = req.method ?? 'GET';
  let verb: string;
  if (method === 'GET') verb = name === '' ? (boolParam(url.searchParams, 'watch') ? 'watch' : 'list') : 'get';
  else if (method === 'POST') verb = 'create';
  else if (method === 'PUT') verb = 'update';
  else if (method === 'PATCH') verb = 'patch';
  else if (method === 'DELETE') verb = name === '' ? 'deletecollection' : 'delete';
  else throw errors.methodNotAllowed();
  if (t.createOnly && verb !== 'create') throw errors.methodNotAllowed();
  if (verb === 'create' && name !== '') throw errors.methodNotAllowed();
  if (name !== '' && t.namespaced && namespace === '') throw notFoundPath();
  if (verb === 'create' && t.namespaced && namespace === '') throw errors.methodNotAllowed();
  if (sub !== undefined && verb !== 'get' && verb !== 'update' && verb !== 'patch') throw errors.methodNotAllowed();
  return { t, verb, namespace, name, subresource: sub as Subresource, resourceLabel: sub === undefined ? plural : `${plural}/${sub}` };
}

function writeContext(req: IncomingMessage, url: URL): WriteContext {
  const dryRun = url.searchParams.getAll('dryRun');
  if (dryRun.some((d) => d !== 'All'))
    throw errors.badRequest(`dryRun: Unsupported value: ${JSON.stringify(dryRun)}: supported values: "All"`);
  return { manager: url.searchParams.get('fieldManager') ?? managerFromUserAgent(req.headers['user-agent']), dryRun: dryRun.length > 0 };
}

async function serve(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  r: ResourceRequest,
  user: SimUser,
  outcome: ReadOutcome,
): Promise<number> {
  const { t, namespace, name } = r;
  const params = url.searchParams;
  switch (r.verb) {
    case 'get': {
      const obj = parts.objects.get(t, namespace, name);
      if (r.subresource === 'scale') return reply(res, 200, parts.objects.scaleOf(t, obj));
      return reply(res, 200, objectView(t, obj, negotiateView(req.headers.accept, 'object')));
    }
    case 'list': {
      const view = negotiateView(req.headers.accept, 'list');
      const page = listObjects(
        parts.store,
        t,
        {
          namespace,
          labelSelector: optional(params, 'labelSelector'),
          fieldSelector: optional(params, 'fieldSelector'),
          limit: parseLimit(params.get('limit')),
          continueToken: optional(params, 'continue'),
          resourceVersion: optional(params, 'resourceVersion'),
          resourceVersionMatch: optional(params, 'resourceVersionMatch'),
        },
        parts.continueTtlMs,
        parts.now(),
      );
      outcome.items = page.items.length;
      return reply(res, 200, listBody(t, page.items, page.listMeta, view));
    }
    case 'watch': {
      const view = negotiateView(req.headers.accept, 'watch');
      const timeout = params.get('timeoutSeconds');
      const query: WatchQuery = {
        namespace,
        labelSelector: optional(params, 'labelSelector'),
        fieldSelector: optional(params, 'fieldSelector'),
        resourceVersion: optional(params, 'resourceVersion'),
        resourceVersionMatch: optional(params, 'resourceVersionMatch'),
        allowWatchBookmarks: boolParam(params, 'allowWatchBookmarks') ?? false,
        sendInitialEvents: boolParam(params, 'sendInitialEvents'),
        timeoutSeconds: timeout === null ? undefined : Math.max(0, Number(timeout) || 0),
      };
      validateWatchQuery(query);
      const stream = new WatchStream(res, t, query, view, parts.watchSettings);
      parts.watches.add(stream);
      stream.start(parts.store, parts.faults, query, () => parts.watches.delete(stream));
      outcome.expired = stream.expired;
      return 200;
    }
    case 'create': {
      const body = parseObjectBody(req, await readBody(req));
      if (t.createOnly) return reply(res, 201, review(parts, t, body, user));
      const created = parts.objects.create(t, namespace, body, writeContext(req, url));
      return reply(res, 201, objectView(t, created, 'full'));
    }
    case 'update': {
      const body = parseObjectBody(req, await readBody(req));
      const updated = parts.objects.update(t, namespace, name, body, writeContext(req, url), r.subresource);
      return reply(res, 200, r.subresource === 'scale' ? updated : objectView(t, updated, 'full'));
    }
    case 'patch': {
      const contentType = mediaType(req.headers['content-type']);
      const text = await readBody(req);
      const ctx = writeContext(req, url);
      if (contentType === PATCH_TYPES.apply)
        return reply(res, 200, objectView(t, apply(parts, t, namespace, name, text, ctx, params), 'full'));
      const patched = parts.objects.patch(t, namespace, name, contentType, parseJson(text), ctx, r.subresource);
      return reply(res, 200, r.subresource === 'scale' ? patched : objectView(t, patched, 'full'));
    }
    case 'delete': {
      const body = parseJson(await readBody(req));
      const options = deleteOptions(body, writeContext(req, url));
      const result = parts.objects.delete(t, namespace, name, options, writeContext(req, url));
      if (result.deleted && !t.returnDeletedObject) {
        const m = result.object.metadata as JsonObject;
        return reply(res, 200, successStatus({ name, group: t.group, kind: t.plural, uid: String(m.uid) }));
      }
      return reply(res, 200, objectView(t, result.object, 'full'));
    }
    case 'deletecollection': {
      const ctx = writeContext(req, url);
      const page = listObjects(
        parts.store,
        t,
        {
          namespace,
          labelSelector: optional(params, 'labelSelector'),
          fieldSelector: optional(params, 'fieldSelector'),
          limit: undefined,
          continueToken: undefined,
          resourceVersion: undefined,
          resourceVersionMatch: undefined,
        },
        parts.continueTtlMs,
        parts.now(),
      );
      const gone = page.items.map((obj) => {
        const m = obj.metadata as JsonObject;
        return parts.objects.delete(t, String(m.namespace ?? ''), String(m.name), { dryRun: ctx.dryRun }, ctx).object;
      });
      return reply(res, 200, listBody(t, gone, { resourceVersion: String(parts.store.currentRevision) }, 'full'));
    }
    default:
      throw errors.methodNotAllowed();
  }
}

function reply(res: ServerResponse, code: number, body: unknown): number {
  send(res, code, body);
  return code;
}

function deleteOptions(body: unknown, ctx: WriteContext): DeleteOptions {
  const options: DeleteOptions = { dryRun: ctx.dryRun };
  if (isObject(body)) {
    if (Array.isArray(body.dryRun) && body.dryRun.includes('All')) options.dryRun = true;
    if (isObject(body.preconditions)) {
      const pre = body.preconditions;
      options.preconditions = {
        ...(typeof pre.uid === 'string' ? { uid: pre.uid } : {}),
        ...(typeof pre.resourceVersion === 'string' ? { resourceVersion: pre.resourceVersion } : {}),
      };
    }
  }
  return options;
}

/**
 * Server-side apply, simplified: the applied configuration is merged into the object (created when
 * missing) and recorded as an `Apply` manager; field conflicts between managers are not detected.
 */
function apply(
  parts: ServerParts,
  t: ResourceType,
  namespace: string,
  name: string,
  text: string,
  ctx: WriteContext,
  params: URLSearchParams,
) {
  if (params.get('fieldManager') === null) {
    throw errors.invalid('PatchOptions', 'meta.k8s.io', '', [
      { field: 'fieldManager', reason: 'FieldValueRequired', message: 'Required value: is required for apply patch' },
    ]);
  }
  let applied: unknown;
  try {
    applied = parseYaml(text);
  } catch (error) {
    throw errors.badRequest(`error decoding YAML: ${(error as Error).message}`);
  }
  if (!isObject(applied)) throw errors.badRequest('the applied configuration must be an object');
  let exists = true;
  try {
    parts.objects.get(t, namespace, name);
  } catch {
    exists = false;
  }
  if (!exists)
    return parts.objects.create(
      t,
      namespace,
      { ...applied, metadata: { ...((applied.metadata as JsonObject | undefined) ?? {}), name } },
      ctx,
    );
  const patchType = t.strategicMerge ? PATCH_TYPES.strategic : PATCH_TYPES.merge;
  return parts.objects.patch(t, namespace, name, patchType, applied, ctx, undefined);
}

/** TokenReview and SubjectAccessReview answered from the simulator's own tokens and rules. */
function review(parts: ServerParts, t: ResourceType, body: unknown, user: SimUser): JsonObject {
  if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
  const spec = (isObject(body.spec) ? body.spec : {}) as JsonObject;
  const base = {
    kind: t.kind,
    apiVersion: `${t.group}/${t.version}`,
    metadata: { ...(isObject(body.metadata) ? body.metadata : {}), creationTimestamp: null },
    spec,
  };
  if (t.plural === 'tokenreviews') {
    const found = typeof spec.token === 'string' ? parts.authn.fromToken(spec.token) : undefined;
    return {
      ...base,
      status:
        found === undefined
          ? { authenticated: false, user: {}, error: 'invalid bearer token' }
          : {
              authenticated: true,
              user: { username: found.username, uid: found.username, groups: found.groups },
              audiences: spec.audiences ?? [],
            },
    };
  }
  const attrsIn = (isObject(spec.resourceAttributes) ? spec.resourceAttributes : {}) as JsonObject;
  const subject =
    t.plural === 'selfsubjectaccessreviews'
      ? user
      : { username: String(spec.user ?? ''), groups: (spec.groups as string[] | undefined) ?? [] };
  const resource = String(attrsIn.resource ?? '');
  const attrs: RequestAttributes = {
    verb: String(attrsIn.verb ?? ''),
    apiGroup: String(attrsIn.group ?? ''),
    resource: attrsIn.subresource ? `${resource}/${String(attrsIn.subresource)}` : resource,
    namespace: String(attrsIn.namespace ?? ''),
    name: String(attrsIn.name ?? ''),
  };
  const decision = parts.authz.decide(subject, attrs);
  return { ...base, status: { allowed: decision.allowed, ...(decision.allowed ? {} : { denied: true }), reason: decision.reason } };
}

/** `/_sim/*`: fault switches and counters over HTTP, behind the same bearer token. */
async function control(parts: ServerParts, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET';
  const route = `${method} ${path}`;
  switch (route) {
    case 'GET /_sim/faults':
      return send(res, 200, parts.faults.settings);
    case 'PUT /_sim/faults':
    case 'PATCH /_sim/faults':
    case 'POST /_sim/faults': {
      let patch: ReturnType<typeof parseFaultPatch>;
      try {
        patch = parseFaultPatch(parseJson(await readBody(req)));
      } catch (error) {
        if (error instanceof ApiError) throw error;
        throw errors.badRequest((error as Error).message);
      }
      return send(res, 200, parts.faults.update(patch));
    }
    case 'POST /_sim/faults/reset':
      parts.faults.reset();
      return send(res, 200, parts.faults.settings);
    case 'POST /_sim/watches/close':
      return send(res, 200, { closed: parts.control.closeWatches() });
    case 'POST /_sim/history/compact':
      parts.control.compactHistory();
      return send(res, 200, { compactedRevision: parts.store.compactedRevision });
    case 'GET /_sim/stats':
      return send(res, 200, { ...parts.control.stats(), memory: process.memoryUsage() });
    case 'GET /_sim/counters':
      return send(res, 200, parts.faults.counters());
    case 'GET /_sim/requests':
      return send(res, 200, parts.requestLog.snapshot());
    case 'POST /_sim/requests/reset':
    case 'DELETE /_sim/requests':
      parts.requestLog.reset();
      return send(res, 200, parts.requestLog.snapshot());
    case 'POST /_sim/counters/reset':
    case 'DELETE /_sim/counters':
      parts.faults.resetCounters();
      return send(res, 200, parts.faults.counters());
    default:
      return send(res, 404, statusBody(404, 'NotFound', `no simulator control endpoint ${route}`));
  }
}
