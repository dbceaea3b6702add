// The one HTTP client to the Kubernetes API server: objects for reconciles, raw JSON and watch streams for the watcher, an optional API budget.
//
// client-node stays for what it does well — the kubeconfig, bearer/exec/OIDC auth, client
// certificates and the TLS agent (applyKubeAuth) — and this module sends the requests itself:
// client-node's Watch cannot send the metadata-only Accept header, its list helpers parse whole
// objects into classes, and its typed APIs silently drop fields their models do not know.
import {
  type ApiConstructor,
  type ApiType,
  createConfiguration,
  HttpMethod,
  type KubeConfig,
  RequestContext,
  type ResponseContext,
  ServerConfiguration,
} from '@kubernetes/client-node';
import { SpanKind } from '@opentelemetry/api';
import { fetch } from 'undici';
import type { ApiBudget } from '../api-budget.ts';
import { errorMessage, InvalidArgumentError, UnavailableError } from '../errors.ts';
import { type ApiCodeClass, type ApiVerb, codeClassOf } from '../metrics.ts';
import { type ObjectKey, type ResourceRef, validateKey, validateResourceRef } from '../object-key.ts';
import { ATTR, inSpan, inTrace } from '../tracing.ts';
import { applyKubeAuth } from './config.ts';
import {
  DEFAULT_RETRY_AFTER_MS,
  FieldConflictError,
  fieldConflictsOf,
  headerOf,
  KubeApiError,
  kubeApiErrorFrom,
  parseRetryAfter,
  unlessNotFound,
} from './errors.ts';
import { KindResolver, type KnownResource } from './kind-resolver.ts';
import { groupVersionPath, resourcePath } from './paths.ts';
import type {
  ApplyObject,
  ApplyOptions,
  KubeClient,
  KubeObject,
  KubeTransport,
  ListOptions,
  NewObject,
  ObjectList,
  Patch,
  Query,
  StoredObject,
  Subresource,
  WriteObserver,
  WriteTarget,
} from './types.ts';

export const ACCEPT_METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const ACCEPT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const ACCEPT_JSON = 'application/json';

const PATCH_CONTENT_TYPE: Record<Patch['type'], string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
};
/** Server-side apply; a JSON body is valid YAML, so the configuration is sent as JSON. */
const APPLY_CONTENT_TYPE = 'application/apply-patch+yaml';

export interface KubeApiClientOptions {
  kubeConfig: KubeConfig;
  /** Paid before every request (the cluster-wide budget the workers share); a 429 pauses it. @defaultValue no budget */
  budget?: ApiBudget;
  /** Called after every request with its verb, its status class and the time it waited for the budget. */
  onRequest?: (verb: ApiVerb, code: ApiCodeClass, waitedMs: number) => void;
  /** `get` and `list` read PartialObjectMetadata instead of whole objects. @defaultValue false */
  metadataOnly?: boolean;
  /** Every request of this client is aborted with it (a reconcile's timeout). */
  signal?: AbortSignal;
  /**
   * The field manager of every write (`fieldManager=`), which server-side apply requires; workers use
   * `conveyor-<controller>`. @defaultValue none: the API server derives one from the User-Agent, and `apply` refuses
   */
  fieldManager?: string;
  /** Resources whose kind `apply` maps to a URL without asking API discovery (a controller's for/owns/watches). */
  resources?: readonly KnownResource[];
  /** Told before and after every create, patch, apply and delete (the workers' own-write records). */
  writes?: WriteObserver;
}

interface SendOptions {
  query?: Query;
  accept?: string;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
  /** Runs after the budget let the request go, just before it is sent. */
  beforeFetch?: () => Promise<void>;
}

/**
 * The Kubernetes API client of every Conveyor process. As a KubeClient it reads and writes objects
 * (reconciles); as a KubeTransport it serves the list+watch state machine and leader election.
 * Every failure is a KubeApiError carrying the Status; with a budget, every request is paid first
 * and a 429 pauses the budget for its Retry-After.
 */
export class KubeApiClient implements KubeClient, KubeTransport {
  private readonly o: KubeApiClientOptions;
  private readonly server: string;
  private readonly kinds: KindResolver;

  constructor(options: KubeApiClientOptions, kinds?: KindResolver) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.o = options;
    this.server = cluster.server.replace(/\/+$/, '');
    this.kinds =
      kinds ??
      new KindResolver(options.resources ?? [], (apiVersion) => {
        const slash = apiVersion.lastIndexOf('/');
        const ref = { group: slash === -1 ? '' : apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
        return this.json('GET', groupVersionPath(ref), {});
      });
  }

  /** The same client whose every request is also aborted by `signal` (for one reconcile). */
  withSignal(signal: AbortSignal): KubeApiClient {
    const signals = this.o.signal === undefined ? signal : AbortSignal.any([this.o.signal, signal]);
    return new KubeApiClient({ ...this.o, signal: signals }, this.kinds);
  }

  /** The same client whose writes are also told to `writes` (one reconcile's own-write records). */
  withWrites(writes: WriteObserver): KubeApiClient {
    return new KubeApiClient({ ...this.o, writes }, this.kinds);
  }

  /** The same client, also telling `onRequest` of each request it sends (one Lambda invocation's API counts). */
  observed(onRequest: NonNullable<KubeApiClientOptions['onRequest']>): KubeApiClient {
    const outer = this.o.onRequest;
    const both: KubeApiClientOptions['onRequest'] = (verb, code, waitedMs) => {
      outer?.(verb, code, waitedMs);
      onRequest(verb, code, waitedMs);
    };
    return new KubeApiClient({ ...this.o, onRequest: both }, this.kinds);
  }

  async get<T extends KubeObject = KubeObject>(key: ObjectKey, options: { subresource?: Subresource } = {}): Promise<StoredObject<T>> {
    validateKey(key);
    return (await this.json('GET', resourcePath(key, key.namespace, key.name, options.subresource), {
      accept: this.o.metadataOnly === true ? ACCEPT_METADATA : ACCEPT_JSON,
    })) as StoredObject<T>;
  }

  find<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T> | undefined> {
    return unlessNotFound(this.get<T>(key));
  }

  async list<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    namespace: string,
    options: ListOptions = {},
  ): Promise<ObjectList<StoredObject<T>>> {
    validateResourceRef(ref);
    const query: Query = {
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      limit: options.limit === undefined ? undefined : String(options.limit),
      continue: options.continue,
    };
    const accept = this.o.metadataOnly === true ? ACCEPT_METADATA_LIST : ACCEPT_JSON;
    return (await this.json('GET', resourcePath(ref, namespace), { query, accept })) as ObjectList<StoredObject<T>>;
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: NewObject<T>): Promise<StoredObject<T>> {
    validateResourceRef(ref);
    const namespace = typeof object.metadata.namespace === 'string' ? object.metadata.namespace : '';
    // A generateName'd object has no name until the server picks one: its write is not observed.
    const name = typeof object.metadata.name === 'string' ? object.metadata.name : undefined;
    const target = name === undefined ? undefined : { group: ref.group, plural: ref.plural, namespace, name };
    return (await this.write(target, 'POST', resourcePath(ref, namespace), {
      body: object,
      query: this.managerQuery(),
    })) as StoredObject<T>;
  }

  async patch<T extends KubeObject = KubeObject>(
    key: ObjectKey,
    patch: Patch,
    options: { subresource?: Subresource } = {},
  ): Promise<StoredObject<T>> {
    validateKey(key);
    return (await this.write(targetOf(key), 'PATCH', resourcePath(key, key.namespace, key.name, options.subresource), {
      body: patch.type === 'json' ? patch.operations : patch.body,
      contentType: PATCH_CONTENT_TYPE[patch.type],
      query: this.managerQuery(),
    })) as StoredObject<T>;
  }

  async apply<T extends KubeObject = KubeObject>(object: ApplyObject<T>, options: ApplyOptions = {}): Promise<StoredObject<T>> {
    const manager = this.o.fieldManager;
    if (manager === undefined) throw new InvalidArgumentError('apply needs a field manager: create the KubeApiClient with fieldManager');
    const { apiVersion, kind, metadata } = object as {
      apiVersion?: unknown;
      kind?: unknown;
      metadata?: { name?: unknown; namespace?: string };
    };
    if (typeof apiVersion !== 'string' || typeof kind !== 'string' || typeof metadata?.name !== 'string') {
      throw new InvalidArgumentError('apply needs an object with apiVersion, kind and metadata.name');
    }
    const resource = await this.kinds.resolve(apiVersion, kind);
    const namespace = resource.namespaced ? (metadata.namespace ?? '') : '';
    if (resource.namespaced && namespace === '')
      throw new InvalidArgumentError(`apply of ${kind} ${metadata.name}: metadata.namespace is required`);
    validateKey({ ...resource, namespace, name: metadata.name });
    const query: Query = { fieldManager: manager, force: options.force === true ? 'true' : undefined };
    try {
      const target = { group: resource.group, plural: resource.plural, namespace, name: metadata.name };
      return (await this.write(target, 'PATCH', resourcePath(resource, namespace, metadata.name, options.subresource), {
        body: object,
        contentType: APPLY_CONTENT_TYPE,
        query,
      })) as StoredObject<T>;
    } catch (error) {
      const conflicts = error instanceof KubeApiError ? fieldConflictsOf(error) : undefined;
      if (conflicts === undefined) throw error;
      const where = `${kind} ${namespace === '' ? '' : `${namespace}/`}${metadata.name}${options.subresource === undefined ? '' : ` (${options.subresource})`}`;
      throw new FieldConflictError(where, manager, conflicts, error as KubeApiError);
    }
  }

  async delete(key: ObjectKey, options: { resourceVersion?: string } = {}): Promise<boolean> {
    validateKey(key);
    const body =
      options.resourceVersion === undefined
        ? undefined
        : { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion: options.resourceVersion } };
    try {
      await this.write(targetOf(key), 'DELETE', resourcePath(key, key.namespace, key.name), body === undefined ? {} : { body });
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) return false;
      throw error;
    }
  }

  /**
   * One of client-node's typed APIs (CoreV1Api, AppsV1Api, …) on the same connection pool, every
   * call also paid from the budget. Its errors are client-node's ApiException (normalizeKubeError
   * turns a 429 into a KubeApiError); a 429 among them still pauses the budget.
   */
  api<T extends ApiType>(type: ApiConstructor<T>): T {
    let waited = 0;
    let verb: ApiVerb = 'get';
    const config = createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      authMethods: {
        default: {
          getName: () => 'kubeconfig',
          applySecurityAuthentication: (context: RequestContext) => applyKubeAuth(this.o.kubeConfig, context).then(() => {}),
        },
      },
      promiseMiddleware: [
        {
          pre: async (context: RequestContext) => {
            const url = new URL(context.getUrl());
            verb = verbOf(context.getHttpMethod(), url.pathname, url.searchParams.get('watch'), context.getHeaders()['Content-Type']);
            waited = (await this.o.budget?.take()) ?? 0;
            if (this.o.signal !== undefined) context.setSignal(this.o.signal as never);
            return context;
          },
          post: async (response: ResponseContext) => {
            await this.afterResponse(verb, response.httpStatusCode, headerOf(response.headers, 'retry-after'), waited);
            return response;
          },
        },
      ],
    });
    return new type(config);
  }

  async getJson(path: string, query: Query, accept: string, signal?: AbortSignal): Promise<unknown> {
    return await this.json('GET', path, { query, accept, signal });
  }

  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    return await this.json(method, path, { body, signal });
  }

  async stream(
    path: string,
    query: Query,
    accept: string,
    signal: AbortSignal,
    onLine: (line: string) => Promise<void> | undefined | void,
  ): Promise<void> {
    const response = await this.send('GET', path, { query, accept, signal });
    if (response.body === null) return;
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true });
      let start = 0;
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(start, newline);
        start = newline + 1;
        // Awaiting before the next read is the backpressure: undici stops reading the socket once its queue is full.
        if (line.trim() !== '') await onLine(line);
        newline = pending.indexOf('\n', start);
      }
      pending = pending.slice(start);
    }
    pending += decoder.decode();
    if (pending.trim() !== '') await onLine(pending);
  }

  /**
   * A write, told to the observer: before it goes out, and after, with the resourceVersion of the
   * object it answered with (a Status answer, such as some deletes give, has none). The observer's own
   * failures never fail the write; awaiting it keeps the record inside the run that made the write.
   */
  private async write(target: WriteTarget | undefined, method: keyof typeof HttpMethod, path: string, options: SendOptions) {
    const observer = target === undefined ? undefined : this.o.writes;
    if (observer === undefined || target === undefined) return await this.json(method, path, options);
    let answer: unknown;
    try {
      answer = await this.json(method, path, { ...options, beforeFetch: () => observer.beforeWrite(target).catch(() => undefined) });
    } catch (error) {
      await observer.afterWrite(target, undefined).catch(() => undefined);
      throw error;
    }
    await observer.afterWrite(target, resourceVersionOf(answer)).catch(() => undefined);
    return answer;
  }

  private managerQuery(): Query {
    return { fieldManager: this.o.fieldManager };
  }

  private async json(method: keyof typeof HttpMethod, path: string, options: SendOptions): Promise<unknown> {
    // A span per call, but only inside a traced operation (a reconcile): the watcher's lists and Lease renewals start none.
    if (!inTrace()) return (await this.read(method, path, options)).body;
    const verb = verbOf(method, path, options.query?.watch, options.contentType);
    const resource = resourceOf(path);
    const attributes = { [ATTR.verb]: verb, [ATTR.method]: method, [ATTR.resource]: resource, [ATTR.path]: path };
    return await inSpan(`kube ${verb} ${resource}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      try {
        const { status, body } = await this.read(method, path, options);
        span.setAttribute(ATTR.status, status);
        return body;
      } catch (error) {
        if (error instanceof KubeApiError) span.setAttribute(ATTR.status, error.statusCode);
        throw error;
      }
    });
  }

  private async read(method: keyof typeof HttpMethod, path: string, options: SendOptions): Promise<{ status: number; body: unknown }> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** Sends one request, paid from the budget; resolves with a 2xx response, throws KubeApiError otherwise. */
  private async send(method: keyof typeof HttpMethod, path: string, options: SendOptions) {
    const url = new URL(this.server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(name, value);
    const context = new RequestContext(url.toString(), HttpMethod[method]);
    await applyKubeAuth(this.o.kubeConfig, context);
    const headers: Record<string, string> = { ...context.getHeaders(), Accept: options.accept ?? ACCEPT_JSON };
    if (options.body !== undefined) headers['Content-Type'] = options.contentType ?? 'application/json';
    const signal = combine(this.o.signal, options.signal);
    signal?.throwIfAborted();
    const waited = (await this.o.budget?.take()) ?? 0;
    await options.beforeFetch?.();
    const verb = verbOf(method, path, options.query?.watch, options.contentType);
    const dispatcher = context.getDispatcher();
    let response: Awaited<ReturnType<typeof fetch>>;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(dispatcher === undefined ? {} : { dispatcher: dispatcher as never }),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      this.o.onRequest?.(verb, 'error', waited);
      // An abort is the caller's doing (a timeout, a stop): it keeps its own error.
      if (signal?.aborted === true) throw error;
      throw connectionError(`${method} ${url.origin}${path}`, error);
    }
    const retryAfter = response.headers.get('retry-after');
    await this.afterResponse(verb, response.status, retryAfter ?? undefined, waited);
    if (response.status >= 200 && response.status < 300) return response;
    const text = await response.text().catch(() => '');
    throw kubeApiErrorFrom(`${method} ${path}`, response.status, text, retryAfter);
  }

  private async afterResponse(verb: ApiVerb, status: number, retryAfter: string | undefined, waited: number): Promise<void> {
    this.o.onRequest?.(verb, codeClassOf(status), waited);
    if (status === 429) await this.o.budget?.pause(parseRetryAfter(retryAfter) ?? DEFAULT_RETRY_AFTER_MS);
  }
}

function targetOf(key: ObjectKey): WriteTarget {
  return { group: key.group, plural: key.plural, namespace: key.namespace, name: key.name };
}

function resourceVersionOf(answer: unknown): string | undefined {
  const object = answer as { kind?: unknown; metadata?: { resourceVersion?: unknown } } | undefined;
  if (object === undefined || object === null || object.kind === 'Status') return undefined;
  const rv = object.metadata?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

/**
 * The Kubernetes verb of a request, as RBAC names it, from its method and path: a GET of a collection is
 * `list` (`watch` with `watch=true`), of one object (or its subresource) `get`; a PATCH with the apply
 * content type is `apply`. Discovery documents count as `get`.
 */
export function verbOf(method: string, path: string, watch?: string | null | undefined, contentType?: string | undefined): ApiVerb {
  switch (method.toUpperCase()) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'DELETE':
      return 'delete';
    case 'PATCH':
      return contentType === APPLY_CONTENT_TYPE ? 'apply' : 'patch';
  }
  if (watch === 'true' || watch === '1') return 'watch';
  // /api/v1/... or /apis/<group>/<version>/..., then [namespaces/<ns>/]<plural>[/<name>[/<subresource>]].
  let rest = path.split('/').filter((s) => s !== '');
  rest = rest[0] === 'api' ? rest.slice(2) : rest[0] === 'apis' ? rest.slice(3) : rest;
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  return rest.length === 1 ? 'list' : 'get';
}

/** The resource a path names, as `plural` or `plural/subresource` (`widgets/status`); `discovery` for the API's own documents. */
function resourceOf(path: string): string {
  let rest = path.split('/').filter((s) => s !== '');
  rest = rest[0] === 'api' ? rest.slice(2) : rest[0] === 'apis' ? rest.slice(3) : rest;
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  if (rest.length === 0) return 'discovery';
  return rest.length >= 3 ? `${rest[0]}/${rest[2]}` : (rest[0] ?? 'discovery');
}

function combine(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return AbortSignal.any([a, b]);
}

/**
 * undici's bare "fetch failed", with what a person needs to act: the request, the server, and the
 * underlying code and message (ECONNREFUSED 10.0.0.1:6443, ENOTFOUND, a TLS certificate problem).
 * Retryable: the per-key backoff decides.
 */
function connectionError(request: string, error: unknown): UnavailableError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const detail = errorMessage(cause);
  const why = typeof code === 'string' && !detail.includes(code) ? `${code}: ${detail}` : detail;
  return new UnavailableError(`${request}: cannot reach the API server: ${why}`, { cause: error });
}
