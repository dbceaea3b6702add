// The HTTP front of the simulator: routing, authentication, authorization, faults, counters, then the object API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Authenticator, type Authorizer, forbiddenMessage, type RequestAttributes, type SimUser } from './auth.ts';
import { control } from './control-api.ts';
import type { FaultState } from './faults.ts';
import { boolParam, optional, send } from './http-io.ts';
import { listObjects, parseLimit } from './list.ts';
import { groupResource, type ObjectApi, type Subresource } from './objects.ts';
import { openApiGroupVersion, openApiIndex, typesOfOpenApiPath } from './openapi.ts';
import type { RequestLog } from './request-log.ts';
import { apiGroupList, apiResourceList, type ResourceType } from './resources.ts';
import { scaleOf } from './scale-subresource.ts';
import { ApiError, errors, type JsonObject } from './status.ts';
import type { Store } from './store.ts';
import type { TypeRegistry } from './type-registry.ts';
import { listBody, negotiateView, objectView } from './views.ts';
import { validateWatchQuery, type WatchQuery, type WatchSettings, WatchStream } from './watch.ts';
import { serveWrite } from './write-requests.ts';

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
  control: {
    closeWatches(): number;
    compactHistory(): void;
    stats(): { objects: number; resourceVersion: number; openWatches: number; unresponsiveWatchCloses: number };
  };
}

const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);

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

export interface ResourceRequest {
  t: ResourceType;
  verb: string;
  namespace: string;
  name: string;
  subresource: Subresource;
  /** Counter and authorization label: plural with `/subresource`. */
  resourceLabel: string;
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
    await parts.faults.delay();
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
      if (r.subresource === 'scale') return reply(res, 200, scaleOf(t, obj));
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
    case 'create':
    case 'update':
    case 'patch':
    case 'delete':
    case 'deletecollection':
      return serveWrite(parts, req, res, url, r, user);
    default:
      throw errors.methodNotAllowed();
  }
}

function reply(res: ServerResponse, code: number, body: unknown): number {
  send(res, code, body);
  return code;
}
