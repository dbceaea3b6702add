// HTTP to the API server for list and watch with our own Accept header, reusing client-node's authentication and TLS dispatcher.
//
// client-node's Watch cannot send a custom Accept header (metadata-only needs one) and its list
// helpers parse whole objects into classes; here we keep client-node for what it does well — the
// kubeconfig, bearer/exec/OIDC auth and the TLS agent — and read the bytes ourselves.

import { applyKubeAuth } from '@conveyor/shared';
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';

export const ACCEPT_METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const ACCEPT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const ACCEPT_JSON = 'application/json';

/** A non-2xx answer from the API server: its status code, Status reason and Retry-After. */
export class KubeHttpError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(status: number, message: string, reason?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'KubeHttpError';
    this.status = status;
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

export type Query = Record<string, string | undefined>;

/** What the list+watch state machine needs of the API server; tests may pass a fake. */
export interface KubeTransport {
  /** GET a JSON document. Throws KubeHttpError on a non-2xx status. */
  getJson(path: string, query: Query, accept: string, signal?: AbortSignal): Promise<unknown>;
  /**
   * GET a stream of newline-separated JSON (a watch), calling `onLine` for each line; resolves
   * when the server ends the response, rejects on a non-2xx status or a broken connection.
   */
  stream(path: string, query: Query, accept: string, signal: AbortSignal, onLine: (line: string) => void): Promise<void>;
  /** Any other request with a JSON body (the Lease of leader election). */
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown>;
}

/** A KubeTransport over a client-node KubeConfig. */
export function createKubeTransport(kc: KubeConfig): KubeTransport {
  const server = () => {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    return cluster.server.replace(/\/+$/, '');
  };

  async function send(method: HttpMethod, path: string, query: Query, accept: string, body?: unknown, signal?: AbortSignal) {
    const url = new URL(server() + path);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, value);
    const context = new RequestContext(url.toString(), method);
    await applyKubeAuth(kc, context);
    const headers: Record<string, string> = { ...context.getHeaders(), Accept: accept };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const dispatcher = context.getDispatcher();
    const response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(dispatcher === undefined ? {} : { dispatcher }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (response.status < 200 || response.status >= 300) {
      const text = await response.text().catch(() => '');
      throw errorFromResponse(response.status, text, response.headers.get('retry-after'));
    }
    return response;
  }

  return {
    async getJson(path, query, accept, signal) {
      const response = await send(HttpMethod.GET, path, query, accept, undefined, signal);
      return await response.json();
    },
    async stream(path, query, accept, signal, onLine) {
      const response = await send(HttpMethod.GET, path, query, accept, undefined, signal);
      if (response.body === null) return;
      const decoder = new TextDecoder();
      let pending = '';
      for await (const chunk of response.body) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim() !== '') onLine(line);
          newline = pending.indexOf('\n');
        }
      }
      pending += decoder.decode();
      if (pending.trim() !== '') onLine(pending);
    },
    async request(method, path, body, signal) {
      const response = await send(method, path, {}, ACCEPT_JSON, body, signal);
      const text = await response.text();
      return text === '' ? undefined : JSON.parse(text);
    },
  };
}

function errorFromResponse(status: number, text: string, retryAfter: string | null): KubeHttpError {
  let message = text.slice(0, 300);
  let reason: string | undefined;
  try {
    const parsed = JSON.parse(text) as { message?: string; reason?: string };
    if (typeof parsed.message === 'string') message = parsed.message;
    if (typeof parsed.reason === 'string') reason = parsed.reason;
  } catch {
    // Not a Status body; keep the start of the text.
  }
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  return new KubeHttpError(status, `HTTP ${status}: ${message}`, reason, Number.isFinite(seconds) ? seconds * 1000 : undefined);
}

/** The collection path of a resource: `/api/v1/configmaps`, `/apis/example.com/v1/namespaces/ns/widgets`. */
export function collectionPath(resource: { group: string; version: string; plural: string }, namespace?: string): string {
  const root = resource.group === '' ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  return namespace === undefined || namespace === '' ? `${root}/${resource.plural}` : `${root}/namespaces/${namespace}/${resource.plural}`;
}
