// Watch streams: chunked JSON lines from a resourceVersion, bookmarks, streaming lists, timeouts and 410 for a history that no longer reaches back.
import type { ServerResponse } from 'node:http';
import type { FaultState } from './faults.ts';
import { parseResourceVersion } from './list.ts';
import type { ResourceType } from './resources.ts';
import { type FieldMatcher, type LabelMatcher, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { errors, type JsonObject, statusBody } from './status.ts';
import type { Store, StoredObject, StoreEvent } from './store.ts';
import { bookmarkObject, objectView, type View } from './views.ts';

export interface WatchQuery {
  namespace: string;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  resourceVersion: string | undefined;
  resourceVersionMatch: string | undefined;
  allowWatchBookmarks: boolean;
  sendInitialEvents: boolean | undefined;
  timeoutSeconds: number | undefined;
}

export interface WatchSettings {
  bookmarkIntervalMs: number;
  /** A watch without timeoutSeconds ends after this long (kube-apiserver: 30–60 minutes). */
  defaultTimeoutMs: number;
  /** A client that stops reading is cut off once this much of its live events waits for it (initial events are made as it reads). */
  maxBufferedBytes: number;
  /** kube-apiserver's cacher closing a watch that does not take its events in time (see UnresponsiveWatchRule); off when undefined. */
  unresponsive: UnresponsiveWatchRule | undefined;
  /** Told each time a watch is closed for unresponsiveness. */
  onUnresponsive?: () => void;
}

/**
 * kube-apiserver's cacher hands each live event to a watch through a buffer of `events` (100 for
 * most resources); when that buffer stays full for `timeoutMs` (its dispatch budget, at most
 * 100 ms) it logs "Forcing … watcher close due to unresponsiveness" and ends the watch, dropping
 * what it had not written. The buffer drains only while the client reads, and not at all while a
 * streaming list's initial events (or a replay from a resourceVersion) are still being written,
 * which the cacher sends first. Like the cacher, the simulator writes a watch's lines only as fast as
 * the connection takes them (the rest waits in the simulator, not in the socket); with this rule, a
 * watch with more than `events` live events waiting for longer than `timeoutMs` is ended cleanly and
 * its waiting lines dropped — a streaming list cut this way never sends its initial-events-end
 * bookmark.
 */
export interface UnresponsiveWatchRule {
  /** @defaultValue 100 */
  events: number;
  /** @defaultValue 100 */
  timeoutMs: number;
}

/** Checks the parameters before the 200 is sent, so bad ones get a plain Status answer. */
export function validateWatchQuery(query: WatchQuery): void {
  parseResourceVersion(query.resourceVersion);
  const causes = [];
  if (query.sendInitialEvents !== undefined) {
    if (query.resourceVersionMatch !== 'NotOlderThan') {
      causes.push({
        field: 'resourceVersionMatch',
        reason: 'FieldValueForbidden',
        message: 'Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
      });
    }
    if (query.sendInitialEvents && !query.allowWatchBookmarks) {
      causes.push({
        field: 'allowWatchBookmarks',
        reason: 'FieldValueForbidden',
        message: 'Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true',
      });
    }
  } else if (query.resourceVersionMatch !== undefined && query.resourceVersionMatch !== '') {
    causes.push({
      field: 'resourceVersionMatch',
      reason: 'FieldValueForbidden',
      message: 'Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided',
    });
  }
  if (causes.length > 0) throw errors.invalid('ListOptions', 'meta.k8s.io', '', causes);
}

/** Serialised event lines shared by every watch that sends the same event the same way (10 watchers, one JSON.stringify). */
const lineCache = new WeakMap<StoreEvent, Map<string, string>>();

function eventLine(event: StoreEvent, type: string, t: ResourceType, view: View): string {
  let lines = lineCache.get(event);
  if (lines === undefined) {
    lines = new Map();
    lineCache.set(event, lines);
  }
  const key = `${type} ${view} ${t.version}`;
  let line = lines.get(key);
  if (line === undefined) {
    line = `${JSON.stringify({ type, object: objectView(t, event.object, view) })}\n`;
    lines.set(key, line);
  }
  return line;
}

/** One open watch: what it filters on and where its lines go. */
export class WatchStream {
  private readonly res: ServerResponse;
  private readonly t: ResourceType;
  private readonly view: View;
  private readonly labels: LabelMatcher | undefined;
  private readonly fields: FieldMatcher | undefined;
  private readonly namespace: string;
  private readonly settings: WatchSettings;
  private sentRv = 0;
  /** The stream opened with a 410 ERROR event (forced expiry or a resourceVersion older than the history). */
  expired = false;
  private held: string[] | undefined;
  private closed = false;
  /** Lines the connection has not taken yet, in order; `live` marks the cacher's live events among them. */
  private waiting: { line: string; live: boolean }[] = [];
  private waitingHead = 0;
  private liveWaiting = 0;
  private liveWaitingBytes = 0;
  private unresponsiveTimer: NodeJS.Timeout | undefined;
  private readonly cleanups: Array<() => void> = [];

  constructor(res: ServerResponse, t: ResourceType, query: WatchQuery, view: View, settings: WatchSettings) {
    this.res = res;
    this.t = t;
    this.view = view;
    this.labels = parseLabelSelector(query.labelSelector);
    this.fields = parseFieldSelector(query.fieldSelector, !t.strategicMerge);
    this.namespace = t.namespaced ? query.namespace : '';
    this.settings = settings;
  }

  /** Sends the initial events (or the replay from resourceVersion), then follows the store until closed. */
  start(store: Store, faults: FaultState, query: WatchQuery, onClose: () => void): void {
    this.res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    this.res.flushHeaders();
    this.cleanups.push(onClose);
    this.res.on('close', () => this.close());
    this.res.on('drain', () => this.flushWaiting());
    if (faults.settings.paused) this.held = [];
    this.cleanups.push(faults.onPause((paused) => (paused ? this.hold() : this.release())));
    if (faults.takeWatchExpiry()) {
      this.sendError(410, 'Expired', `too old resource version: ${query.resourceVersion ?? '0'} (${store.currentRevision})`);
      this.close();
      return;
    }
    const live: StoreEvent[] = [];
    let replaying = true;
    this.cleanups.push(
      store.subscribe(this.t.storageKey, (event) => {
        if (replaying) live.push(event);
        else this.deliver(event, true);
      }),
    );
    const rv = parseResourceVersion(query.resourceVersion);
    const initial = query.sendInitialEvents ?? (rv === undefined || rv === 0);
    if (initial) {
      const snapshotRv = store.currentRevision;
      const prefix = this.namespace === '' ? '' : `${this.namespace}/`;
      for (const [, obj] of store.bucket(this.t.storageKey).scan(prefix, undefined)) {
        if (this.matches(obj)) this.send('ADDED', objectView(this.t, obj, this.view));
      }
      this.sentRv = snapshotRv;
      if (query.sendInitialEvents === true) this.send('BOOKMARK', bookmarkObject(this.t, snapshotRv, this.view, true));
    } else if (rv !== undefined) {
      if (rv > store.currentRevision) {
        this.sendError(504, 'Timeout', `Too large resource version: ${rv}, current: ${store.currentRevision}`);
        this.close();
        return;
      }
      const events = store.eventsSince(this.t.storageKey, rv);
      if (events === undefined) {
        this.sendError(410, 'Expired', `too old resource version: ${rv} (${store.compactedRevision + 1})`);
        this.close();
        return;
      }
      this.sentRv = rv;
      for (const event of events) this.deliver(event);
    }
    replaying = false;
    for (const event of live) this.deliver(event, true);
    if (query.allowWatchBookmarks) {
      const timer = setInterval(() => {
        const current = store.currentRevision;
        // As the cacher does, a periodic bookmark that cannot be handed over at once is skipped.
        if (current >= this.sentRv && this.waitingHead === this.waiting.length)
          this.send('BOOKMARK', bookmarkObject(this.t, current, this.view, false));
      }, this.settings.bookmarkIntervalMs);
      timer.unref();
      this.cleanups.push(() => clearInterval(timer));
    }
    const timeoutMs = query.timeoutSeconds !== undefined ? query.timeoutSeconds * 1000 : this.settings.defaultTimeoutMs;
    if (query.allowWatchBookmarks && timeoutMs > 2000) {
      // kube-apiserver's watch cache also sends a bookmark 2 s before the watch's deadline.
      const beforeDeadline = setTimeout(
        () => this.send('BOOKMARK', bookmarkObject(this.t, store.currentRevision, this.view, false)),
        timeoutMs - 2000,
      );
      beforeDeadline.unref();
      this.cleanups.push(() => clearTimeout(beforeDeadline));
    }
    const timeout = setTimeout(() => this.close(), timeoutMs);
    timeout.unref();
    this.cleanups.push(() => clearTimeout(timeout));
  }

  /** Ends the stream the way a server-side timeout does: a clean end of the chunked body. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.unresponsiveTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    if (this.held !== undefined) this.release();
    if (!this.res.writableEnded) this.res.end();
  }

  private matches(obj: StoredObject): boolean {
    const m = obj.metadata as JsonObject;
    if (this.namespace !== '' && m.namespace !== this.namespace) return false;
    if (this.labels !== undefined && !this.labels(m.labels as Record<string, string> | undefined)) return false;
    return this.fields === undefined || this.fields({ name: String(m.name), namespace: String(m.namespace ?? '') });
  }

  /** Selector-aware delivery: an object that starts matching is ADDED, one that stops matching is DELETED. `live`: not part of the initial events or a replay. */
  private deliver(event: StoreEvent, live = false): void {
    if (event.rv <= this.sentRv) return;
    this.sentRv = event.rv;
    const now = this.matches(event.object);
    const before = event.previous !== undefined && event.type !== 'ADDED' && this.matches(event.previous);
    let type: string | undefined;
    if (event.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else if (event.type === 'DELETED') type = before || now ? 'DELETED' : undefined;
    else if (now) type = before ? 'MODIFIED' : 'ADDED';
    else if (before) type = 'DELETED';
    if (type !== undefined) this.write(eventLine(event, type, this.t, this.view), live);
  }

  private send(type: string, object: unknown): void {
    this.write(`${JSON.stringify({ type, object })}\n`);
  }

  private sendError(code: number, reason: 'Expired' | 'Timeout', message: string): void {
    if (code === 410) this.expired = true;
    this.send('ERROR', statusBody(code, reason, message));
  }

  /** Writes now while the connection takes lines; after that, lines wait in order until it drains. */
  private write(line: string, live = false): void {
    if (this.closed) return;
    if (this.held !== undefined) {
      this.held.push(line);
      return;
    }
    if (this.waitingHead < this.waiting.length || this.res.writableNeedDrain) {
      this.waiting.push({ line, live });
      if (!live) return;
      this.liveWaiting++;
      this.liveWaitingBytes += line.length;
      // Initial events are not counted: kube-apiserver makes them from its cache as the client reads, holding none.
      if (this.liveWaitingBytes + this.res.writableLength > this.settings.maxBufferedBytes) this.close();
      else this.checkResponsive();
      return;
    }
    this.res.write(line);
    if (this.res.writableLength > this.settings.maxBufferedBytes) this.close();
  }

  private flushWaiting(): void {
    while (this.waitingHead < this.waiting.length && !this.res.writableNeedDrain && !this.closed) {
      const next = this.waiting[this.waitingHead] as { line: string; live: boolean };
      this.waiting[this.waitingHead] = { line: '', live: false };
      this.waitingHead++;
      if (next.live) {
        this.liveWaiting--;
        this.liveWaitingBytes -= next.line.length;
      }
      this.res.write(next.line);
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    }
    this.checkResponsive();
  }

  /** Starts the cacher's timer when more live events wait than its buffer holds; stops it once they fit again. */
  private checkResponsive(): void {
    const rule = this.settings.unresponsive;
    if (rule === undefined || this.closed) return;
    if (this.liveWaiting <= rule.events) {
      clearTimeout(this.unresponsiveTimer);
      this.unresponsiveTimer = undefined;
      return;
    }
    if (this.unresponsiveTimer !== undefined) return;
    this.unresponsiveTimer = setTimeout(() => {
      this.unresponsiveTimer = undefined;
      if (this.closed || this.liveWaiting <= rule.events) return;
      this.settings.onUnresponsive?.();
      // What the connection has not taken is dropped, as the cacher drops its buffers.
      this.waiting = [];
      this.waitingHead = 0;
      this.close();
    }, rule.timeoutMs);
    this.unresponsiveTimer.unref();
  }

  private hold(): void {
    this.held ??= [];
  }

  private release(): void {
    const lines = this.held ?? [];
    this.held = undefined;
    if (lines.length > 0 && !this.res.writableEnded) this.res.write(lines.join(''));
  }
}
