// The API server a conformance file runs against: the simulator, or any cluster named by CONFORMANCE_KUBECONFIG; plus the fixtures and helpers every file uses.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
  Watch,
} from '@kubernetes/client-node';
import { type KubeSimulator, type KubeSimulatorOptions, startKubeSimulator } from '../src/index.ts';
import { gadgetDefinition, widgetDefinition } from './crds.ts';

export const META = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const META_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** Why a simulator-only assertion is skipped when the suite runs against a real cluster; false on the simulator. */
export const SIMULATOR_ONLY: string | false =
  process.env.CONFORMANCE_KUBECONFIG === undefined
    ? false
    : 'asserts simulator-only behaviour (fault injection, counters, clock); skipped against a real API server';

/**
 * Why a test that needs kube-controller-manager (garbage collection, namespace deletion) is skipped: the
 * target was declared to run without one (CONFORMANCE_CONTROLLER_MANAGER=false); false when it has one. The
 * simulator then runs without its controllers too, so both targets agree.
 */
export const NEEDS_CONTROLLER_MANAGER: string | false =
  process.env.CONFORMANCE_CONTROLLER_MANAGER === 'false'
    ? 'needs kube-controller-manager (garbage collection, namespace deletion); CONFORMANCE_CONTROLLER_MANAGER=false says the target runs without one'
    : false;

export interface Target {
  kc: KubeConfig;
  /** Undefined when running against a real API server. */
  simulator: KubeSimulator | undefined;
  /** Unique per run: a namespace and a CRD group created for it and removed afterwards. */
  namespace: string;
  group: string;
  /**
   * Namespaced CRD `widgets` with status and scale subresources and a schema that declares its fields
   * (crds.ts); cluster-scoped CRD `gadgets` without subresources, preserving unknown fields.
   */
  widgets: { group: string; version: 'v1'; plural: string };
  gadgets: { group: string; version: 'v1'; plural: string };
  core: CoreV1Api;
  custom: CustomObjectsApi;
  close(): Promise<void>;
}

export async function openTarget(simulatorOptions: KubeSimulatorOptions = {}): Promise<Target> {
  const file = process.env.CONFORMANCE_KUBECONFIG;
  let kc: KubeConfig;
  let simulator: KubeSimulator | undefined;
  if (file === undefined) {
    simulator = await startKubeSimulator({ controllerManager: NEEDS_CONTROLLER_MANAGER === false, ...simulatorOptions });
    kc = simulator.kubeConfig();
  } else {
    kc = new KubeConfig();
    kc.loadFromFile(file);
  }
  const suffix = randomBytes(4).toString('hex');
  const namespace = `conveyor-conformance-${suffix}`;
  const group = `c${suffix}.conformance.conveyor.dev`;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const definitions: V1CustomResourceDefinition[] = [widgetDefinition(group), gadgetDefinition(group)];
  for (const body of definitions) await ext.createCustomResourceDefinition({ body });
  const widgets = { group, version: 'v1' as const, plural: 'widgets' };
  const gadgets = { group, version: 'v1' as const, plural: 'gadgets' };
  // A real server serves a new CRD a moment after it is created.
  await eventually(async () => {
    await custom.listNamespacedCustomObject({ ...widgets, namespace });
    await custom.listClusterCustomObject(gadgets);
  });
  return {
    kc,
    simulator,
    namespace,
    group,
    widgets,
    gadgets,
    core,
    custom,
    async close() {
      // Strip finalizers the tests left, so the namespace and CRDs can go.
      const clear = { metadata: { finalizers: null } };
      const leftWidgets = (await custom.listNamespacedCustomObject({ ...widgets, namespace })) as { items: KubernetesObject[] };
      for (const item of leftWidgets.items.filter((i) => (i.metadata?.finalizers ?? []).length > 0)) {
        const name = item.metadata?.name ?? '';
        await custom.patchNamespacedCustomObject({ ...widgets, namespace, name, body: clear }, merge()).catch(() => undefined);
      }
      const leftGadgets = (await custom.listClusterCustomObject(gadgets)) as { items: KubernetesObject[] };
      for (const item of leftGadgets.items.filter((i) => (i.metadata?.finalizers ?? []).length > 0)) {
        await custom.patchClusterCustomObject({ ...gadgets, name: item.metadata?.name ?? '', body: clear }, merge()).catch(() => undefined);
      }
      await ext.deleteCustomResourceDefinition({ name: `widgets.${group}` }).catch(() => undefined);
      await ext.deleteCustomResourceDefinition({ name: `gadgets.${group}` }).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
      await simulator?.close();
    },
  };
}

/** The same cluster as `kc`, authenticating with another bearer token. */
export function withToken(kc: KubeConfig, token: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  assert.ok(cluster, 'the kubeconfig has a current cluster');
  const other = new KubeConfig();
  other.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'other', token }],
    contexts: [{ name: 'other', cluster: cluster.name, user: 'other' }],
    currentContext: 'other',
  });
  return other;
}

/** Request options for a merge patch (client-node sends JSON patch by default). */
export function merge() {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
export function strategic() {
  return setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
}
export function apply() {
  return setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
}
export function metadataOnly(list: boolean) {
  return setHeaderOptions('Accept', list ? META_LIST : META);
}

/** Retries an assertion until it passes or `timeoutMs` runs out. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The Status body of an ApiException, parsed. */
export function statusOf(error: unknown): {
  code: number;
  reason: string;
  message: string;
  kind: string;
  status: string;
  details?: Record<string, unknown>;
} {
  assert.ok(error instanceof ApiException, `expected an ApiException, got ${String(error)}`);
  const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
  return { ...body, httpCode: error.code };
}

/** Runs `call`, expecting it to fail with this HTTP code and Status reason; returns the Status. */
export async function expectStatus(call: Promise<unknown>, code: number, reason: string) {
  try {
    await call;
  } catch (error) {
    const status = statusOf(error);
    assert.equal((error as ApiException<unknown>).code, code, `HTTP code; Status: ${JSON.stringify(status)}`);
    assert.equal(status.kind, 'Status');
    assert.equal(status.status, 'Failure');
    assert.equal(status.code, code);
    assert.equal(status.reason, reason, `reason; Status: ${JSON.stringify(status)}`);
    return status;
  }
  assert.fail(`expected ${code} ${reason}, but the call succeeded`);
}

export interface WatchEvent {
  type: string;
  object: Record<string, unknown> & { metadata?: Record<string, unknown> };
}

export interface OpenWatch {
  events: WatchEvent[];
  /** Resolves with the error (or null) when the stream ends. */
  done: Promise<unknown>;
  /** Resolves when an event satisfying `predicate` has arrived. */
  next(predicate: (event: WatchEvent) => boolean, timeoutMs?: number): Promise<WatchEvent>;
  stop(): void;
}

/**
 * Opens a watch with client-node's `Watch`; with `accept` the request carries that Accept header, set
 * through client-node's own authentication hook (Watch has no header option).
 */
export async function openWatch(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean>,
  accept?: string,
): Promise<OpenWatch> {
  const config =
    accept === undefined
      ? kc
      : ({
          getCurrentCluster: () => kc.getCurrentCluster(),
          applySecurityAuthentication: async (context: { setHeaderParam(key: string, value: string): void }) => {
            await kc.applySecurityAuthentication(context as never);
            context.setHeaderParam('Accept', accept);
          },
        } as unknown as KubeConfig);
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  let finish: (error: unknown) => void = () => {};
  const done = new Promise<unknown>((resolve) => {
    finish = resolve;
  });
  const controller = await new Watch(config).watch(
    path,
    query,
    (type, object) => {
      events.push({ type, object });
      for (const w of [...waiters]) w();
    },
    (error) => {
      finish(error ?? null);
      for (const w of [...waiters]) w();
    },
  );
  let ended = false;
  void done.then(() => {
    ended = true;
  });
  return {
    events,
    done,
    stop: () => controller.abort(),
    next(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(predicate);
          if (found !== undefined) {
            cleanup();
            resolve(found);
          } else if (ended) {
            cleanup();
            reject(new Error(`watch ended before the expected event; got ${JSON.stringify(events.map((e) => e.type))}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no matching watch event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => `${e.type}:${String(e.object.metadata?.name)}`))}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export function rvOf(obj: unknown): string {
  return String((obj as KubernetesObject).metadata?.resourceVersion);
}

export interface RawResponse {
  code: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * A request with the kubeconfig's credentials but no client-node model in the way: client-node's typed calls
 * drop properties their models do not know, and some tests need to send exactly those.
 */
export async function rawRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<RawResponse> {
  const cluster = kc.getCurrentCluster();
  assert.ok(cluster, 'the kubeconfig has a current cluster');
  const url = new URL(path, cluster.server);
  const options: RequestOptions = { method, headers: { Accept: 'application/json', 'Content-Type': contentType } };
  await kc.applyToHTTPSOptions(options);
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, options, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        data += chunk;
      });
      res.on('end', () =>
        resolve({
          code: res.statusCode ?? 0,
          headers: res.headers,
          body: data === '' ? {} : (JSON.parse(data) as Record<string, unknown>),
        }),
      );
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** The Warning header values of a response, unquoted: `unknown field "spec.x"`. */
export function warningsOf(headers: IncomingHttpHeaders | Record<string, string> | undefined): string[] {
  const raw = headers?.warning;
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return values.flatMap((v) => [...v.matchAll(/299 - "((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string));
}
