// The Kubernetes client reconciles use: generic get/list/create/patch/delete over client-node's auth and transport, each call paid from the API budget.

import {
  type ApiBudget,
  type ApiCodeClass,
  applyKubeAuth,
  codeClassOf,
  type KubeClient,
  type KubeObject,
  type ListOptions,
  type NewObject,
  type ObjectKey,
  type ObjectList,
  type Patch,
  type ResourceRef,
  type StoredObject,
  validateKey,
  validateResourceRef,
} from '@conveyor/shared';
import {
  type ApiConstructor,
  type ApiType,
  createConfiguration,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  RequestContext,
  type ResponseContext,
  ServerConfiguration,
} from '@kubernetes/client-node';
import { headerOf, KubeApiError, KubeThrottledError, parseRetryAfter, unlessNotFound } from './kube-errors.ts';

export interface KubeClientOptions {
  kubeConfig: KubeConfig;
  budget: ApiBudget;
  /** Called after every request with its status class and the time it waited for the budget. */
  onRequest?: (code: ApiCodeClass, waitedMs: number) => void;
}

const CONTENT_TYPE: Record<Patch['type'], string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
};

/** The API path of a collection (`name` undefined) or of one object. */
export function resourcePath(ref: ResourceRef, namespace: string, name?: string, subresource?: string): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const scope = namespace === '' ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${scope}/${ref.resource}${object}${subresource === undefined ? '' : `/${subresource}`}`;
}

/**
 * A KubeClient on top of client-node: its KubeConfig authenticates every request (tokens, client
 * certificates, TLS), its fetch library sends it. Failures become KubeApiError, 429 a
 * KubeThrottledError, and a 429 also pauses the shared budget for its Retry-After.
 */
export class BudgetedKubeClient implements KubeClient {
  private readonly kc: KubeConfig;
  private readonly server: string;
  private readonly budget: ApiBudget;
  private readonly onRequest: (code: ApiCodeClass, waitedMs: number) => void;
  private readonly http = new IsomorphicFetchHttpLibrary();

  constructor(options: KubeClientOptions) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('the KubeConfig has no current cluster');
    this.kc = options.kubeConfig;
    this.server = cluster.server.replace(/\/+$/, '');
    this.budget = options.budget;
    this.onRequest = options.onRequest ?? (() => {});
  }

  async get<T extends KubeObject = KubeObject>(key: ObjectKey): Promise<StoredObject<T>> {
    validateKey(key);
    return (await this.request('GET', resourcePath(key, key.namespace, key.name))) as StoredObject<T>;
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
    const query: Record<string, string> = {};
    if (options.labelSelector !== undefined) query.labelSelector = options.labelSelector;
    if (options.fieldSelector !== undefined) query.fieldSelector = options.fieldSelector;
    if (options.limit !== undefined) query.limit = String(options.limit);
    if (options.continue !== undefined) query.continue = options.continue;
    return (await this.request('GET', resourcePath(ref, namespace), { query })) as ObjectList<StoredObject<T>>;
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, object: NewObject<T>): Promise<StoredObject<T>> {
    validateResourceRef(ref);
    const namespace = typeof object.metadata.namespace === 'string' ? object.metadata.namespace : '';
    return (await this.request('POST', resourcePath(ref, namespace), { body: object })) as StoredObject<T>;
  }

  async patch<T extends KubeObject = KubeObject>(
    key: ObjectKey,
    patch: Patch,
    options: { subresource?: 'status' } = {},
  ): Promise<StoredObject<T>> {
    validateKey(key);
    const body = patch.type === 'json' ? patch.operations : patch.body;
    return (await this.request('PATCH', resourcePath(key, key.namespace, key.name, options.subresource), {
      body,
      contentType: CONTENT_TYPE[patch.type],
    })) as StoredObject<T>;
  }

  async delete(key: ObjectKey, options: { resourceVersion?: string } = {}): Promise<boolean> {
    validateKey(key);
    const body =
      options.resourceVersion === undefined
        ? undefined
        : { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion: options.resourceVersion } };
    try {
      await this.request('DELETE', resourcePath(key, key.namespace, key.name), body === undefined ? {} : { body });
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) return false;
      throw error;
    }
  }

  /**
   * One of client-node's typed APIs (CoreV1Api, AppsV1Api, …) whose every call also draws from
   * the budget. Its errors are client-node's ApiException; a 429 among them still pauses the budget.
   */
  api<T extends ApiType>(type: ApiConstructor<T>): T {
    let waited = 0;
    const config = createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      // One connection pool for every call of this client (see applyKubeAuth).
      authMethods: {
        default: {
          getName: () => 'kubeconfig',
          applySecurityAuthentication: (context: RequestContext) => applyKubeAuth(this.kc, context).then(() => {}),
        },
      },
      promiseMiddleware: [
        {
          pre: async (context: RequestContext) => {
            waited = await this.budget.take();
            return context;
          },
          post: async (response: ResponseContext) => {
            await this.afterResponse(response.httpStatusCode, response.headers, waited);
            return response;
          },
        },
      ],
    });
    return new type(config);
  }

  private async request(
    method: keyof typeof HttpMethod,
    path: string,
    options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {},
  ): Promise<unknown> {
    const url = new URL(this.server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    const context = new RequestContext(url.toString(), HttpMethod[method]);
    context.setHeaderParam('Accept', 'application/json');
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      context.setBody(JSON.stringify(options.body));
    }
    await applyKubeAuth(this.kc, context);
    const waited = await this.budget.take();
    let response: ResponseContext;
    try {
      response = await this.http.send(context).toPromise();
    } catch (error) {
      this.onRequest('error', waited);
      throw error;
    }
    const text = await response.body.text();
    await this.afterResponse(response.httpStatusCode, response.headers, waited);
    if (response.httpStatusCode >= 200 && response.httpStatusCode < 300) return text === '' ? undefined : JSON.parse(text);
    throw this.failure(method, path, response, text);
  }

  private async afterResponse(status: number, headers: Record<string, string>, waited: number): Promise<void> {
    this.onRequest(codeClassOf(status), waited);
    if (status === 429) await this.budget.pause(parseRetryAfter(headerOf(headers, 'retry-after')));
  }

  private failure(method: string, path: string, response: ResponseContext, text: string): Error {
    let reason = '';
    let message = text.slice(0, 500);
    try {
      const status = JSON.parse(text) as { reason?: unknown; message?: unknown };
      if (typeof status.reason === 'string') reason = status.reason;
      if (typeof status.message === 'string') message = status.message;
    } catch {
      // Not a Status body (a proxy's HTML page, say): keep the raw start of it.
    }
    const summary = `${method} ${path}: ${response.httpStatusCode}${reason === '' ? '' : ` ${reason}`}: ${message}`;
    if (response.httpStatusCode === 429) {
      return new KubeThrottledError(summary, parseRetryAfter(headerOf(response.headers, 'retry-after')));
    }
    return new KubeApiError(response.httpStatusCode, reason, summary);
  }
}
