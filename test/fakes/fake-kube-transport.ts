// A small in-memory KubeTransport for the state machine's unit tests: pages, continue expiry, history-bounded watches, bookmarks, scripted failures.
//
// It is not the simulator (test/src/sim): it speaks the KubeTransport interface, not HTTP, so
// the list+watch state machine can be driven step by step. Integration tests use the simulator.
import type { KubeObject } from '@conveyor/shared';
import { KubeApiError, type KubeTransport, type Query } from '@conveyor/shared';

interface Stored {
  rv: number;
  object: KubeObject;
}

interface Watcher {
  from: number;
  push(line: string): void;
  end(): void;
}

export interface RecordedRequest {
  kind: 'list' | 'watch';
  path: string;
  query: Query;
  accept: string;
}

export class FakeApi {
  rv = 100;
  readonly objects = new Map<string, Stored>();
  readonly history: { rv: number; line: string }[] = [];
  /** Events at or below this resourceVersion are gone from history (watch from before → 410). */
  compactedRv = 0;
  readonly requests: RecordedRequest[] = [];
  /** Status codes the next requests fail with, in order. */
  readonly failures: number[] = [];
  /** The next continue token presented gets 410. */
  expireNextContinue = false;
  /** Whether a watch with sendInitialEvents streams the list. */
  streamingLists = true;
  /** A streaming list ends after this many items, before its closing bookmark (a server that gives up). */
  cutStreamingListsAfter: number | undefined;
  private readonly watchers = new Set<Watcher>();

  create(name: string, meta: Record<string, unknown> = {}, body: Record<string, unknown> = {}): void {
    this.write('ADDED', name, { generation: 1, ...meta }, body);
  }

  /** Changes metadata fields and, when given, the rest of the object (a full-object view shows it). */
  update(name: string, meta: Record<string, unknown>, body?: Record<string, unknown>): void {
    const old = this.objects.get(name);
    if (old === undefined) throw new Error(`no ${name}`);
    const { metadata: _, ...oldBody } = old.object;
    this.write('MODIFIED', name, { ...old.object.metadata, ...meta }, body ?? oldBody);
  }

  remove(name: string): void {
    const old = this.objects.get(name);
    if (old === undefined) throw new Error(`no ${name}`);
    this.objects.delete(name);
    const rv = ++this.rv;
    const object = { ...old.object, metadata: { ...old.object.metadata, resourceVersion: String(rv) } };
    this.record(rv, { type: 'DELETED', object });
  }

  /** Ends every open watch the way a server timeout does. */
  closeWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  bookmark(): void {
    for (const w of this.watchers) w.push(JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv) } } }));
  }

  sendRaw(line: string): void {
    for (const w of this.watchers) w.push(line);
  }

  /** Forgets history up to now: a watch from an older resourceVersion gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  count(kind: 'list' | 'watch', predicate: (r: RecordedRequest) => boolean = () => true): number {
    return this.requests.filter((r) => r.kind === kind && predicate(r)).length;
  }

  private write(type: string, name: string, meta: Record<string, unknown>, body: Record<string, unknown>): void {
    const rv = ++this.rv;
    const object: KubeObject = {
      ...body,
      metadata: { name, namespace: 'default', uid: `uid-${name}`, ...meta, resourceVersion: String(rv) },
    };
    this.objects.set(name, { rv, object });
    this.record(rv, { type, object });
  }

  private record(rv: number, event: { type: string; object: KubeObject }): void {
    const line = JSON.stringify(event);
    this.history.push({ rv, line });
    for (const w of this.watchers) if (rv > w.from) w.push(line);
  }

  private fail(): void {
    const status = this.failures.shift();
    if (status !== undefined)
      throw new KubeApiError({
        statusCode: status,
        message: `HTTP ${status}: scripted failure`,
        ...(status === 429 ? { retryAfterMs: 10 } : {}),
      });
  }

  readonly transport: KubeTransport = {
    getJson: async (path, query, accept) => {
      this.requests.push({ kind: 'list', path, query, accept });
      await Promise.resolve();
      this.fail();
      const limit = Number(query.limit ?? '0') || Number.POSITIVE_INFINITY;
      let after = '';
      let snapshot = this.rv;
      if (query.continue !== undefined) {
        if (this.expireNextContinue) {
          this.expireNextContinue = false;
          throw new KubeApiError({ statusCode: 410, reason: 'Expired', message: 'HTTP 410: continue token expired' });
        }
        [after, snapshot] = JSON.parse(query.continue) as [string, number];
      }
      const names = [...this.objects.keys()].filter((n) => n > after).sort();
      const page = names.slice(0, limit);
      const more = names.length > page.length;
      return {
        kind: 'PartialObjectMetadataList',
        metadata: { resourceVersion: String(snapshot), ...(more ? { continue: JSON.stringify([page.at(-1), snapshot]) } : {}) },
        items: page.map((n) => this.objects.get(n)?.object),
      };
    },
    stream: async (path, query, accept, signal, onLine) => {
      this.requests.push({ kind: 'watch', path, query, accept });
      await Promise.resolve();
      this.fail();
      let from: number;
      if (query.sendInitialEvents === 'true' && this.streamingLists) {
        from = this.rv;
        const names = [...this.objects.keys()].sort();
        const cut = this.cutStreamingListsAfter;
        for (const name of cut === undefined ? names : names.slice(0, cut)) {
          onLine(JSON.stringify({ type: 'ADDED', object: this.objects.get(name)?.object }));
        }
        if (cut !== undefined) return;
        onLine(
          JSON.stringify({
            type: 'BOOKMARK',
            object: { metadata: { resourceVersion: String(from), annotations: { 'k8s.io/initial-events-end': 'true' } } },
          }),
        );
      } else {
        from = Number(query.resourceVersion ?? this.rv);
        if (from < this.compactedRv) {
          onLine(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } }));
          return;
        }
        for (const h of this.history) if (h.rv > from) onLine(h.line);
      }
      await new Promise<void>((resolve, reject) => {
        const watcher: Watcher = { from, push: onLine, end: resolve };
        this.watchers.add(watcher);
        signal.addEventListener(
          'abort',
          () => {
            this.watchers.delete(watcher);
            reject(signal.reason);
          },
          { once: true },
        );
      });
    },
    request: async () => {
      throw new Error('not used by the fake');
    },
  };
}

/** One transport over several fake resources, chosen by the longest collection path that prefixes the request's. */
export function routeTransport(routes: Record<string, FakeApi>): KubeTransport {
  const pick = (path: string): KubeTransport => {
    const match = Object.keys(routes)
      .filter((prefix) => path === prefix || path.startsWith(`${prefix}`))
      .sort((a, b) => b.length - a.length)[0];
    if (match === undefined) throw new KubeApiError({ statusCode: 404, message: `HTTP 404: no fake for ${path}` });
    return (routes[match] as FakeApi).transport;
  };
  return {
    getJson: (path, query, accept, signal) => pick(path).getJson(path, query, accept, signal),
    stream: (path, query, accept, signal, onLine) => pick(path).stream(path, query, accept, signal, onLine),
    request: async () => {
      throw new Error('not used by the fake');
    },
  };
}
