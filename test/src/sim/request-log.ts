// A bounded log of list and watch requests — what a client asked for (Accept, limit, continue, resourceVersion) — so tests can check how a watcher reads.

/** One list or watch request as the simulator received it. */
export interface LoggedRequest {
  /** Sequence number since the simulator started; survives `reset`, so a test can read "requests after n". */
  seq: number;
  /** When it arrived (the simulator's clock, ms). */
  at: number;
  verb: 'list' | 'watch';
  /** URL path without the query: `/apis/example.com/v1/namespaces/default/widgets`. */
  path: string;
  /** Plural resource name, such as `widgets`. */
  resource: string;
  /** '' for a cluster-wide request. */
  namespace: string;
  /** The `Accept` header as sent, '' when absent. */
  accept: string;
  /** `limit` as sent (lists), undefined when absent. */
  limit: number | undefined;
  /** Whether the request carried a continue token (a list's second and later pages). */
  continued: boolean;
  resourceVersion: string | undefined;
  /** Watches: `sendInitialEvents=true` (a streaming list). */
  sendInitialEvents: boolean;
  allowWatchBookmarks: boolean;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  /** Lists: how many items the page held. */
  items: number | undefined;
  /** HTTP status answered; a watch that then ends with an in-stream 410 ERROR event still shows 200 (see `expired`). */
  code: number;
  /** Watches: the stream's first line was an ERROR event with 410 (a forced expiry or a too-old resourceVersion). */
  expired: boolean;
}

export interface RequestLogSnapshot {
  requests: LoggedRequest[];
  /** Entries dropped because the log was full (the oldest go first). */
  dropped: number;
}

/** Keeps the last `limit` list and watch requests. */
export class RequestLog {
  private entries: LoggedRequest[] = [];
  private head = 0;
  private seq = 0;
  private droppedCount = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  add(entry: Omit<LoggedRequest, 'seq'>): LoggedRequest {
    const logged = { ...entry, seq: ++this.seq };
    if (this.entries.length < this.limit) this.entries.push(logged);
    else {
      // A ring: overwrite the oldest.
      this.entries[this.head] = logged;
      this.head = (this.head + 1) % this.limit;
      this.droppedCount++;
    }
    return logged;
  }

  /** Oldest first. */
  snapshot(): RequestLogSnapshot {
    return { requests: [...this.entries.slice(this.head), ...this.entries.slice(0, this.head)], dropped: this.droppedCount };
  }

  reset(): void {
    this.entries = [];
    this.head = 0;
    this.droppedCount = 0;
  }
}
