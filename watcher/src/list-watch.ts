// The list+watch state machine for one resource: paginated or streaming list, watch with bookmarks, resume, relist on 410, never stop.
//
// Expected flow: list (pages of `pageSize`, or one streaming watch with sendInitialEvents) →
// watch from the list's resourceVersion → on a normal end of the watch (timeoutSeconds, server
// close) watch again from the last resourceVersion seen (events and bookmarks), without listing →
// on 410 Gone (too old, expired continue) list again → on any other failure wait a capped,
// jittered exponential backoff and try again. A watch silent for twice the bookmark interval is
// abandoned and reopened. `run` returns only when its signal aborts.
//
// Guarantees: every handler call for a list happens between `beginList` and `endList`; events
// arrive in the server's order; a handler that throws is logged and the machine carries on.
//
// Reading keeps up: a watch's lines are read off the socket into a LineBuffer as fast as the server
// writes them, while handling takes them from there in slices that yield to the event loop, so an
// API server never sees a busy watcher as an unresponsive client (kube-apiserver closes those). The
// buffer has its own bound (`bufferChars`), and the enqueue buffer's (`whenRoom`) pauses handling:
// past them the watcher stops reading and the server decides; a streaming list that it cuts is
// listed again in pages, a watch is resumed from the last resourceVersion handled. Nothing is lost.
import {
  ACCEPT_JSON,
  ACCEPT_METADATA,
  ACCEPT_METADATA_LIST,
  Backoff,
  type Clock,
  ConveyorError,
  errorMessage,
  KubeApiError,
  type KubeObject,
  type KubeTransport,
  type Logger,
  type Query,
  type ResourceSpec,
  resourcePath,
  systemClock,
} from '@conveyor/shared';
import { LineBuffer } from './line-buffer.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type ListReason = 'initial' | 'gone' | 'expired' | 'requested';
export type RestartReason = 'closed' | 'silent' | 'error' | 'throttled';

export interface ListWatchHandler {
  /** A list starts; `reason` says why. Items follow, then endList (or another beginList if it restarts). */
  beginList(reason: ListReason): void;
  listItem(object: KubeObject): void;
  /** The list is complete as of `resourceVersion`. The watch starts after this resolves. */
  endList(resourceVersion: string): Promise<void> | void;
  event(type: WatchEventType, object: KubeObject): void;
  /** The server says everything up to `resourceVersion` has been sent. */
  bookmark(resourceVersion: string): void;
  /** A watch line that is not a watch event (counted, skipped). */
  malformed?(line: string): void;
  /** The watch reconnected without a relist. */
  restarted?(reason: RestartReason, error?: unknown): void;
}

export interface ListWatchOptions {
  resource: ResourceSpec;
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Metadata-only (PartialObjectMetadata) or whole objects. @defaultValue true */
  metadataOnly?: boolean;
  /** @defaultValue 500 */
  pageSize?: number;
  /** Server-side watch timeout; each watch asks for this plus up to 50 % jitter. @defaultValue 300000 */
  watchTimeoutMs?: number;
  /** The server's bookmark interval; a watch silent for twice this is reopened. @defaultValue 60000 */
  bookmarkIntervalMs?: number;
  /** @defaultValue 200 */
  baseBackoffMs?: number;
  /** @defaultValue 30000 */
  maxBackoffMs?: number;
  /** 'auto' tries a streaming list and falls back to pages when the server does not do it. @defaultValue 'auto' */
  streamingList?: 'auto' | 'always' | 'never';
  /**
   * Characters (bytes, for JSON) of watch lines read off the socket but not yet handled; past this the
   * watcher stops reading until handling catches up (see line-buffer.ts). @defaultValue 16 MiB
   */
  bufferChars?: number;
  /**
   * Between two lines, a promise to await before handling more (the enqueue buffer is full), or
   * undefined to go on. While it waits, lines collect in the line buffer. @defaultValue always go on
   */
  whenRoom?: () => Promise<void> | undefined;
  transport: KubeTransport;
  handler: ListWatchHandler;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';
/** How long handling runs before it lets the event loop read the socket (and run timers, Redis, HTTP). */
const SLICE_MS = 10;
export const DEFAULT_BUFFER_CHARS = 16 * 1024 * 1024;

/** The resource list or watch answered 410 Gone: the resourceVersion or continue token is too old. */
class GoneError extends Error {}
/** The stream ended before the streaming list's closing bookmark. */
class IncompleteListError extends Error {}
/** The server took a streaming-list request but does not implement it. */
class StreamingUnsupportedError extends Error {}
/** relist() closed the current watch on purpose. */
class RelistRequested extends Error {}

export class ListWatch {
  private readonly o: Required<Omit<ListWatchOptions, 'namespace' | 'labelSelector' | 'fieldSelector' | 'whenRoom'>> &
    Pick<ListWatchOptions, 'namespace' | 'labelSelector' | 'fieldSelector' | 'whenRoom'>;
  private readonly path: string;
  private readonly backoff: Backoff;
  private lastRv: string | undefined;
  private needList = true;
  private listReason: ListReason = 'initial';
  private streaming: boolean;
  /** The last streaming list failed before its end: list the next time in pages. */
  private pageNextList = false;
  private current: AbortController | undefined;

  constructor(options: ListWatchOptions) {
    this.o = {
      metadataOnly: true,
      pageSize: 500,
      watchTimeoutMs: 300_000,
      bookmarkIntervalMs: 60_000,
      baseBackoffMs: 200,
      maxBackoffMs: 30_000,
      streamingList: 'auto',
      bufferChars: DEFAULT_BUFFER_CHARS,
      clock: systemClock,
      random: Math.random,
      ...options,
    };
    this.path = resourcePath(options.resource, options.namespace ?? '');
    this.backoff = new Backoff({ base: this.o.baseBackoffMs, max: this.o.maxBackoffMs }, this.o.random);
    this.streaming = this.o.streamingList !== 'never';
  }

  /** The last resourceVersion seen (list, event or bookmark). */
  get resourceVersion(): string | undefined {
    return this.lastRv;
  }

  /** Lists again at the next opportunity (reshard, queue epoch loss), closing the current watch. */
  relist(reason: ListReason = 'requested'): void {
    this.needList = true;
    this.listReason = reason;
    this.current?.abort(new RelistRequested('relist requested'));
  }

  /** Runs until `signal` aborts. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.needList) {
          const reason = this.listReason;
          this.needList = false;
          // A relist asked for while listing (needList set again) lists once more before watching.
          if (this.streaming && !this.pageNextList) {
            await this.streamingListAndWatch(reason, signal);
          } else {
            this.pageNextList = false;
            await this.pagedList(reason, signal);
          }
        } else {
          await this.watch(signal);
        }
      } catch (error) {
        if (signal.aborted) break;
        await this.recover(error, signal);
      }
    }
  }

  private async recover(error: unknown, signal: AbortSignal): Promise<void> {
    if (this.needList && error instanceof RelistRequested) return;
    if (error instanceof GoneError) {
      this.o.logger.info({ path: this.path }, 'resourceVersion too old (410 Gone): relisting');
      this.needList = true;
      this.listReason = 'gone';
      return;
    }
    if (error instanceof StreamingUnsupportedError) {
      this.o.logger.info({ path: this.path, why: error.message }, 'server does not stream lists; listing in pages');
      this.streaming = false;
      this.needList = true;
      return;
    }
    if (error instanceof IncompleteListError) this.needList = true;
    const throttled = error instanceof KubeApiError && error.statusCode === 429;
    const silent = error instanceof SilentWatchError;
    const reason: RestartReason = throttled ? 'throttled' : silent ? 'silent' : 'error';
    let delay = this.backoff.next();
    if (throttled && error.retryAfterMs !== undefined) delay = Math.max(delay, error.retryAfterMs);
    // What the API server or the network answered is said in one line (what, where, why); only an
    // unexpected error keeps its stack.
    const err = error instanceof ConveyorError ? errorMessage(error) : error;
    const code = error instanceof ConveyorError ? { code: error.code } : {};
    this.o.logger.warn({ path: this.path, err, ...code, retryInMs: delay, reason }, 'list/watch failed; retrying');
    if (!this.needList) this.safely(() => this.o.handler.restarted?.(reason, error));
    await this.o.clock.sleep(delay, signal);
  }

  private query(extra: Query): Query {
    return { labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector, ...extra };
  }

  /** Lists in pages; a 410 on a continue token restarts the list from the first page. */
  private async pagedList(reason: ListReason, signal: AbortSignal): Promise<void> {
    const accept = this.o.metadataOnly ? ACCEPT_METADATA_LIST : ACCEPT_JSON;
    let listReason = reason;
    for (;;) {
      this.o.handler.beginList(listReason);
      let token: string | undefined;
      let rv: string | undefined;
      try {
        do {
          const page = (await this.o.transport.getJson(
            this.path,
            this.query({ limit: String(this.o.pageSize), continue: token }),
            accept,
            signal,
          )) as { metadata?: { resourceVersion?: string; continue?: string }; items?: KubeObject[] };
          rv ??= page.metadata?.resourceVersion;
          for (const item of page.items ?? []) this.safely(() => this.o.handler.listItem(item));
          token = page.metadata?.continue || undefined;
        } while (token !== undefined && !signal.aborted);
      } catch (error) {
        if (error instanceof KubeApiError && error.statusCode === 410 && token !== undefined) {
          this.o.logger.info({ path: this.path }, 'continue token expired (410): listing again from the start');
          listReason = 'expired';
          continue;
        }
        this.needList = true;
        this.listReason = listReason;
        throw error;
      }
      if (signal.aborted) return;
      if (rv === undefined) {
        this.needList = true;
        throw new Error('list response carried no resourceVersion');
      }
      this.lastRv = rv;
      await this.o.handler.endList(rv);
      this.backoff.reset();
      return;
    }
  }

  private async streamingListAndWatch(reason: ListReason, signal: AbortSignal): Promise<void> {
    this.o.handler.beginList(reason);
    let ended = false;
    try {
      await this.openWatch(
        signal,
        { sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan' },
        () => ended,
        async (rv) => {
          ended = true;
          this.lastRv = rv;
          await this.o.handler.endList(rv);
          this.backoff.reset();
        },
      );
    } catch (error) {
      if (!ended) {
        this.needList = true;
        this.listReason = reason;
        // As client-go's reflector does, a streaming list that breaks off is retried as a paged list:
        // a server may end it every time (a watch buffer that fills up on a large collection), and
        // retrying the stream alone would then never sync. Later relists try streaming again.
        this.pageNextList = this.o.streamingList === 'auto';
        const status = error instanceof KubeApiError ? error.statusCode : 0;
        // Servers without WatchList reject the parameters (400/422) or forbid them (403).
        if (this.o.streamingList === 'auto' && (status === 400 || status === 403 || status === 422)) {
          throw new StreamingUnsupportedError(error instanceof Error ? error.message : String(error));
        }
      }
      throw error;
    }
    if (!ended) {
      this.pageNextList = this.o.streamingList === 'auto';
      throw new IncompleteListError('the streaming list ended before its initial-events-end bookmark');
    }
    this.safely(() => this.o.handler.restarted?.('closed'));
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const started = this.o.clock.now();
    let lines = 0;
    await this.openWatch(
      signal,
      { resourceVersion: this.lastRv },
      () => true,
      undefined,
      () => lines++,
    );
    // A watch that ends at once with nothing to say is a failure in disguise: back off.
    if (lines === 0 && this.o.clock.now() - started < 1_000) {
      throw new Error('the watch ended immediately without events');
    }
    this.backoff.reset();
    this.safely(() => this.o.handler.restarted?.('closed'));
  }

  /**
   * One watch request. `listed()` says whether the initial list is over (events before that are
   * list items); `onListEnd` is called at the streaming list's closing bookmark.
   *
   * The stream is read into a LineBuffer while handleLines takes lines from it, yielding to the
   * event loop every SLICE_MS so the socket is read while events are handled. Lines already read
   * are handled even after the server ended the watch: their resourceVersions are where the next
   * watch resumes. An abort (relist, silence, stop) drops them instead.
   */
  private async openWatch(
    signal: AbortSignal,
    extra: Query,
    listed: () => boolean,
    onListEnd?: (rv: string) => Promise<void>,
    onLine?: () => void,
  ): Promise<void> {
    const controller = new AbortController();
    this.current = controller;
    const stop = () => controller.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const silenceMs = this.o.bookmarkIntervalMs * 2;
    let silence = this.o.clock.setTimeout(() => controller.abort(new SilentWatchError(silenceMs)), silenceMs);
    const timeoutSeconds = Math.max(1, Math.round((this.o.watchTimeoutMs / 1000) * (1 + this.o.random() / 2)));
    const lines = new LineBuffer(this.o.bufferChars);
    const drop = () => lines.discard();
    controller.signal.addEventListener('abort', drop, { once: true });
    let streamError: { error: unknown } | undefined;
    const reading = this.o.transport
      .stream(
        this.path,
        this.query({ watch: 'true', allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds), ...extra }),
        this.o.metadataOnly ? ACCEPT_METADATA : ACCEPT_JSON,
        controller.signal,
        (line) => {
          silence.cancel();
          silence = this.o.clock.setTimeout(() => controller.abort(new SilentWatchError(silenceMs)), silenceMs);
          onLine?.();
          return lines.push(line);
        },
      )
      .catch((error: unknown) => {
        streamError = { error };
      })
      .finally(() => lines.end());
    let failure: { error: unknown } | undefined;
    try {
      await this.handleLines(lines, controller.signal, listed, onListEnd);
    } catch (error) {
      failure = { error };
      controller.abort(error);
    }
    try {
      await reading;
    } finally {
      silence.cancel();
      signal.removeEventListener('abort', stop);
      controller.signal.removeEventListener('abort', drop);
      if (this.current === controller) this.current = undefined;
    }
    if (failure !== undefined) throw failure.error;
    const reason = controller.signal.reason;
    if (controller.signal.aborted && reason instanceof Error && !signal.aborted) throw reason;
    if (streamError === undefined) return;
    const error = streamError.error;
    if (error instanceof KubeApiError && error.statusCode === 410) throw new GoneError(error.message);
    throw error;
  }

  /** Handles buffered lines in order until the stream ends and the buffer is empty, or the watch is aborted. */
  private async handleLines(
    lines: LineBuffer,
    aborted: AbortSignal,
    listed: () => boolean,
    onListEnd?: (rv: string) => Promise<void>,
  ): Promise<void> {
    let sliceStart = performance.now();
    for (;;) {
      const line = lines.take() ?? (await lines.next());
      if (line === undefined || aborted.aborted) return;
      const pending = this.handleLine(line, listed, onListEnd);
      if (pending !== undefined) await pending;
      const room = this.o.whenRoom?.();
      if (room !== undefined) await untilAborted(room, aborted);
      // Reading the socket happens in I/O callbacks: handling must leave the event loop now and then to let them run.
      if (performance.now() - sliceStart >= SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }

  /** Handles one watch line; returns a promise only for the streaming list's closing bookmark (endList). */
  private handleLine(line: string, listed: () => boolean, onListEnd?: (rv: string) => Promise<void>): Promise<void> | undefined {
    let event: { type?: unknown; object?: KubeObject & { code?: number; reason?: string; message?: string } };
    try {
      event = JSON.parse(line);
    } catch {
      this.safely(() => this.o.handler.malformed?.(line));
      return undefined;
    }
    const object = event.object;
    if (typeof event.type !== 'string' || object === null || typeof object !== 'object') {
      this.safely(() => this.o.handler.malformed?.(line));
      return undefined;
    }
    const rv = object.metadata?.resourceVersion;
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED':
        if (rv === undefined) {
          this.safely(() => this.o.handler.malformed?.(line));
          return undefined;
        }
        if (!listed() && event.type === 'ADDED') this.safely(() => this.o.handler.listItem(object));
        else this.safely(() => this.o.handler.event(event.type as WatchEventType, object));
        this.lastRv = rv;
        return undefined;
      case 'BOOKMARK':
        if (rv === undefined) return undefined;
        if (!listed()) {
          if (object.metadata?.annotations?.[INITIAL_EVENTS_END] === 'true' && onListEnd !== undefined) return onListEnd(rv);
          // A bookmark before the initial events ended, without the annotation: the server ignored sendInitialEvents.
          if (this.o.streamingList === 'auto') throw new StreamingUnsupportedError('bookmark without initial-events-end');
          return undefined;
        }
        this.lastRv = rv;
        this.safely(() => this.o.handler.bookmark(rv));
        return undefined;
      case 'ERROR': {
        const code = typeof object.code === 'number' ? object.code : 0;
        if (code === 410) throw new GoneError(object.message ?? 'watch expired');
        throw new KubeApiError({
          statusCode: code || 500,
          reason: object.reason ?? '',
          message: `watch error: ${object.message ?? line.slice(0, 200)}`,
        });
      }
      default:
        this.safely(() => this.o.handler.malformed?.(line));
        return undefined;
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.o.logger.error({ path: this.path, err: error }, 'watch handler failed; continuing');
    }
  }
}

/** No event or bookmark arrived for twice the bookmark interval. */
export class SilentWatchError extends Error {
  constructor(ms: number) {
    super(`no event or bookmark for ${ms} ms`);
    this.name = 'SilentWatchError';
  }
}

/** Resolves with `promise`, or as soon as `signal` aborts (whatever `promise` then does). */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}
