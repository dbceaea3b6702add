// `startKubeSimulator`: an in-memory Kubernetes API server that behaves like kube-apiserver on the wire, for tests, benchmarks and demos.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { Authenticator, type AuthorizationRule, Authorizer, type TokenSpec } from './auth.ts';
import { ControllerManager } from './controller-manager.ts';
import { type FaultRule, type FaultSettings, FaultState, type RequestCounters, type ThrottleRule } from './faults.ts';
import { internalWrite, ObjectApi } from './objects.ts';
import { RequestLog, type RequestLogSnapshot } from './request-log.ts';
import { createRequestHandler } from './server.ts';
import { Store } from './store.ts';
import { selfSignedCertificate, type TlsMaterial } from './tls.ts';
import { TypeRegistry } from './type-registry.ts';
import type { UnresponsiveWatchRule, WatchSettings, WatchStream } from './watch.ts';

export interface KubeSimulatorOptions {
  /** Port on 127.0.0.1; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /**
   * Serve HTTPS: `true` makes a self-signed certificate with `openssl` (the kubeconfig trusts it), or pass
   * your own. kubectl sends bearer tokens only over TLS. @defaultValue false (plain HTTP)
   */
  tls?: boolean | TlsMaterial;
  /** Accepted bearer tokens; the first is `simulator.token`. @defaultValue one random token */
  tokens?: TokenSpec[];
  /** Authorization rules; a request no rule allows gets 403. @defaultValue allow everything */
  authorization?: AuthorizationRule[];
  /** How long watch events stay replayable (the watch cache's window). @defaultValue 75_000 */
  historyWindowMs?: number;
  /** At most this many events are kept, whatever their age. @defaultValue 1_000_000 */
  historyLimit?: number;
  /** How often BOOKMARK events go to watches that allow them. @defaultValue 60_000 */
  bookmarkIntervalMs?: number;
  /** How long a list's continue token stays valid (etcd's compaction interval). @defaultValue 300_000 */
  continueTokenTtlMs?: number;
  /** A watch without timeoutSeconds ends after this long. @defaultValue 1_800_000 */
  watchTimeoutMs?: number;
  /**
   * Close a watch that does not take its events in time, as kube-apiserver's cacher does ("Forcing …
   * watcher close due to unresponsiveness"): `true` for kube-apiserver's 100 events and 100 ms, or
   * other values (UnresponsiveWatchRule says how it is judged). @defaultValue false: only a client that
   * leaves 64 MiB unread is cut off
   */
  unresponsiveWatches?: boolean | Partial<UnresponsiveWatchRule>;
  /** How many list and watch requests `requests()` keeps (the oldest are dropped first). @defaultValue 10_000 */
  requestLogLimit?: number;
  /** Clock in milliseconds. @defaultValue Date.now */
  now?: () => number;
  /** Decides which requests a fault with `share` < 1 hits. @defaultValue Math.random */
  random?: () => number;
  /**
   * Run what kube-controller-manager runs and controllers rely on: garbage collection of dependents (background,
   * foreground and orphan propagation) and namespace deletion. Off, the simulator is an API server alone: deleted
   * owners leave their dependents, foregroundDeletion and orphan finalizers stay, a deleted namespace stays
   * Terminating. @defaultValue true
   */
  controllerManager?: boolean;
}

export interface SimulatorFaults {
  get(): FaultSettings;
  set(patch: Partial<FaultSettings>): FaultSettings;
  /** Everything off, server resumed. */
  reset(): void;
  latency(ms: number): void;
  /** How many requests are being held by `latency` now (arrived, not yet answered). */
  delayed(): number;
  /** 429 with Retry-After for a share of requests, or one verb, or `count` requests. */
  throttle(rule?: ThrottleRule): void;
  /** 500 InternalError for a share of requests, or one verb, or `count` requests. */
  serverErrors(rule?: FaultRule): void;
  pause(): void;
  resume(): void;
  /** Ends every open watch (a clean end of stream, like an API server restart); resolves to how many. */
  closeWatches(): number;
  /** The next `count` watches get an ERROR event with a 410 Expired Status. */
  expireNextWatch(count?: number): void;
  /** Forgets the event history: watches from any earlier resourceVersion get 410. */
  compactHistory(): void;
}

export interface KubeSimulator {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The first accepted bearer token. */
  token: string;
  /** A client-node KubeConfig for this server with the bearer token. */
  kubeConfig(): KubeConfig;
  /** Writes a kubeconfig file (JSON, which kubectl and client-node read as YAML). */
  writeKubeconfig(path: string): void;
  faults: SimulatorFaults;
  counters(): RequestCounters;
  resetCounters(): void;
  /** The last list and watch requests, oldest first: Accept header, limit, continue, resourceVersion, status. */
  requests(): RequestLogSnapshot;
  /** Empties the request log (sequence numbers keep counting). */
  resetRequests(): void;
  /** The current global resourceVersion. */
  resourceVersion(): number;
  /** Watches ended because their client did not take events in time (`unresponsiveWatches`). */
  unresponsiveWatchCloses(): number;
  /**
   * Creates objects in-process, skipping HTTP (no authentication, faults, counters or request log), for
   * seeding tens of thousands of objects quickly. Each is an ordinary create: validated, given a uid and
   * resourceVersion, and sent to open watches. Throws the API's error (such as AlreadyExists) on the first
   * object it refuses; those before it stay created. Returns the number created.
   */
  createObjects(resource: { group: string; version: string; plural: string }, namespace: string, objects: Iterable<unknown>): number;
  close(): Promise<void>;
}

export async function startKubeSimulator(options: KubeSimulatorOptions = {}): Promise<KubeSimulator> {
  const now = options.now ?? Date.now;
  const tokens = options.tokens ?? [randomBytes(24).toString('base64url')];
  const first = tokens[0];
  if (first === undefined) throw new TypeError('startKubeSimulator: tokens must name at least one token');
  const token = typeof first === 'string' ? first : first.token;
  const store = new Store({ now, historyWindowMs: options.historyWindowMs ?? 75_000, historyLimit: options.historyLimit ?? 1_000_000 });
  const types = new TypeRegistry();
  const faults = new FaultState(options.random ?? Math.random);
  const watches = new Set<WatchStream>();
  let unresponsiveCloses = 0;
  const requestLog = new RequestLog(options.requestLogLimit ?? 10_000);
  const closeWatches = () => {
    const open = [...watches];
    for (const w of open) w.close();
    return open.length;
  };
  const objects = new ObjectApi(store, types, now);
  // The namespaces every cluster starts with.
  const nsType = types.find('', 'v1', 'namespaces');
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    if (nsType !== undefined)
      objects.create(nsType, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, internalWrite('kube-apiserver'));
  }
  const controllers = options.controllerManager === false ? undefined : new ControllerManager(store, types, objects);
  const handler = createRequestHandler({
    store,
    types,
    objects,
    faults,
    authn: new Authenticator(tokens),
    authz: new Authorizer(options.authorization),
    watches,
    requestLog,
    watchSettings: watchSettingsOf(options, () => {
      unresponsiveCloses++;
    }),
    continueTtlMs: options.continueTokenTtlMs ?? 300_000,
    now,
    control: {
      closeWatches,
      compactHistory: () => store.compactAll(),
      stats: () => ({
        objects: store.objectCount(),
        resourceVersion: store.currentRevision,
        openWatches: watches.size,
        unresponsiveWatchCloses: unresponsiveCloses,
      }),
    },
  });
  const host = options.host ?? '127.0.0.1';
  const tls = options.tls === true ? selfSignedCertificate(host) : options.tls === false ? undefined : options.tls;
  const server: Server =
    tls === undefined
      ? createServer({ keepAliveTimeout: 60_000 }, handler)
      : createTlsServer({ ...tls, keepAliveTimeout: 60_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `${tls === undefined ? 'http' : 'https'}://${host}:${address.port}`;
  const kubeConfig = () => simulatorKubeConfig(url, token, tls);
  return {
    url,
    token,
    kubeConfig,
    writeKubeconfig(path) {
      writeFileSync(path, `${kubeConfig().exportConfig()}\n`, { mode: 0o600 });
    },
    faults: {
      get: () => faults.settings,
      set: (patch) => faults.update(patch),
      reset: () => faults.reset(),
      latency: (ms) => void faults.update({ latencyMs: ms }),
      delayed: () => faults.delayedNow,
      throttle: (rule = {}) => void faults.update({ throttle: rule }),
      serverErrors: (rule = {}) => void faults.update({ serverErrors: rule }),
      pause: () => void faults.update({ paused: true }),
      resume: () => void faults.update({ paused: false }),
      closeWatches,
      expireNextWatch: (count = 1) => void faults.update({ expireNextWatches: faults.settings.expireNextWatches + count }),
      compactHistory: () => store.compactAll(),
    },
    counters: () => faults.counters(),
    resetCounters: () => faults.resetCounters(),
    requests: () => requestLog.snapshot(),
    resetRequests: () => requestLog.reset(),
    resourceVersion: () => store.currentRevision,
    unresponsiveWatchCloses: () => unresponsiveCloses,
    createObjects(resource, namespace, items) {
      const t = types.find(resource.group, resource.version, resource.plural);
      if (t === undefined)
        throw new TypeError(`createObjects: the simulator does not serve ${resource.plural}.${resource.group}/${resource.version}`);
      let created = 0;
      for (const body of items) {
        objects.create(t, t.namespaced ? namespace : '', body, internalWrite('conveyor-sim'));
        created++;
      }
      return created;
    },
    async close() {
      controllers?.stop();
      faults.reset();
      closeWatches();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How the simulator's watches behave, from its options. */
function watchSettingsOf(options: KubeSimulatorOptions, onUnresponsive: () => void): WatchSettings {
  const rule = options.unresponsiveWatches;
  return {
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    defaultTimeoutMs: options.watchTimeoutMs ?? 1_800_000,
    maxBufferedBytes: 64 * 1024 * 1024,
    unresponsive: rule === undefined || rule === false ? undefined : { events: 100, timeoutMs: 100, ...(rule === true ? {} : rule) },
    onUnresponsive,
  };
}

/** A client-node KubeConfig for the simulator with its bearer token, trusting its certificate when it serves TLS. */
function simulatorKubeConfig(url: string, token: string, tls: TlsMaterial | undefined): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      tls === undefined
        ? // client-node refuses plain http unless skipTLSVerify is set.
          { name: 'conveyor-sim', server: url, skipTLSVerify: true }
        : {
            name: 'conveyor-sim',
            server: url,
            skipTLSVerify: false,
            caData: Buffer.from('ca' in tls ? String(tls.ca) : tls.cert).toString('base64'),
          },
    ],
    users: [{ name: 'conveyor-sim', token }],
    contexts: [{ name: 'conveyor-sim', cluster: 'conveyor-sim', user: 'conveyor-sim', namespace: 'default' }],
    currentContext: 'conveyor-sim',
  });
  return kc;
}
