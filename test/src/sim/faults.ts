// Run-time fault injection (latency, 429, 500, pause, closed or expired watches) and request counters.

export interface FaultRule {
  /** Share of matching requests hit, 0..1. @defaultValue 1 */
  share?: number;
  /** Only these verbs (get, list, watch, create, update, patch, delete, deletecollection). @defaultValue all */
  verbs?: string[];
  /** Only these resources, as plural names (`configmaps`, `widgets`, `deployments/scale`). @defaultValue all */
  resources?: string[];
  /** Stop after hitting this many requests. @defaultValue unlimited */
  count?: number;
}

export interface ThrottleRule extends FaultRule {
  /** The Retry-After header and details.retryAfterSeconds. @defaultValue 1 */
  retryAfterSeconds?: number;
}

export interface FaultSettings {
  /** Added before every API answer, in milliseconds. @defaultValue 0 */
  latencyMs: number;
  /** 429 TooManyRequests with Retry-After for the matching requests. */
  throttle: ThrottleRule | null;
  /** 500 InternalError for the matching requests. */
  serverErrors: FaultRule | null;
  /** Requests wait (and open watches hold their events) until resumed. */
  paused: boolean;
  /** This many of the next watches get an ERROR event with a 410 Status instead of events. */
  expireNextWatches: number;
}

export type FaultDecision = { kind: 'throttle'; retryAfterSeconds: number } | { kind: 'error' } | undefined;

export interface RequestCount {
  verb: string;
  resource: string;
  code: number;
  count: number;
}

export interface RequestCounters {
  total: number;
  byVerb: Record<string, number>;
  byResource: Record<string, number>;
  byCode: Record<string, number>;
  entries: RequestCount[];
}

export function defaultFaults(): FaultSettings {
  return { latencyMs: 0, throttle: null, serverErrors: null, paused: false, expireNextWatches: 0 };
}

/** Fault switches and counters shared by the in-process API and the `/_sim/*` control endpoints. */
export class FaultState {
  settings: FaultSettings = defaultFaults();
  private readonly random: () => number;
  private readonly resumeWaiters: Array<() => void> = [];
  private readonly pauseListeners = new Set<(paused: boolean) => void>();
  private readonly counts = new Map<string, RequestCount>();

  constructor(random: () => number) {
    this.random = random;
  }

  update(patch: Partial<FaultSettings>): FaultSettings {
    const wasPaused = this.settings.paused;
    this.settings = { ...this.settings, ...patch };
    if (wasPaused !== this.settings.paused) this.onPauseChange();
    return this.settings;
  }

  reset(): void {
    this.update(defaultFaults());
  }

  /** What to do to this request, counting down a rule's `count`. */
  decide(verb: string, resource: string): FaultDecision {
    const throttle = this.settings.throttle;
    if (throttle !== null && this.hits(throttle, verb, resource)) {
      this.settings = { ...this.settings, throttle: consume(throttle) };
      return { kind: 'throttle', retryAfterSeconds: throttle.retryAfterSeconds ?? 1 };
    }
    const serverErrors = this.settings.serverErrors;
    if (serverErrors !== null && this.hits(serverErrors, verb, resource)) {
      this.settings = { ...this.settings, serverErrors: consume(serverErrors) };
      return { kind: 'error' };
    }
    return undefined;
  }

  /** Whether the next watch must fail with 410; takes one from the count. */
  takeWatchExpiry(): boolean {
    if (this.settings.expireNextWatches <= 0) return false;
    this.settings = { ...this.settings, expireNextWatches: this.settings.expireNextWatches - 1 };
    return true;
  }

  /** How many requests are waiting out `latencyMs` right now: requests that reached the server and have no answer yet. */
  delayedNow = 0;

  /** Waits out `latencyMs` (read when the request arrives), counted in `delayedNow` meanwhile. */
  async delay(): Promise<void> {
    const ms = this.settings.latencyMs;
    if (ms <= 0) return;
    this.delayedNow += 1;
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      this.delayedNow -= 1;
    }
  }

  /** Resolves at once, or when the server is resumed. */
  async waitWhilePaused(): Promise<void> {
    while (this.settings.paused) await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
  }

  onPause(listener: (paused: boolean) => void): () => void {
    this.pauseListeners.add(listener);
    return () => this.pauseListeners.delete(listener);
  }

  count(verb: string, resource: string, code: number): void {
    const key = `${verb}\u0000${resource}\u0000${code}`;
    const entry = this.counts.get(key);
    if (entry === undefined) this.counts.set(key, { verb, resource, code, count: 1 });
    else entry.count += 1;
  }

  counters(): RequestCounters {
    const result: RequestCounters = { total: 0, byVerb: {}, byResource: {}, byCode: {}, entries: [] };
    for (const entry of this.counts.values()) {
      result.total += entry.count;
      result.byVerb[entry.verb] = (result.byVerb[entry.verb] ?? 0) + entry.count;
      result.byResource[entry.resource] = (result.byResource[entry.resource] ?? 0) + entry.count;
      result.byCode[String(entry.code)] = (result.byCode[String(entry.code)] ?? 0) + entry.count;
      result.entries.push({ ...entry });
    }
    return result;
  }

  resetCounters(): void {
    this.counts.clear();
  }

  private hits(rule: FaultRule, verb: string, resource: string): boolean {
    if (rule.count !== undefined && rule.count <= 0) return false;
    if (rule.verbs !== undefined && !rule.verbs.includes(verb)) return false;
    if (rule.resources !== undefined && !rule.resources.includes(resource)) return false;
    return this.random() < (rule.share ?? 1);
  }

  private onPauseChange(): void {
    for (const listener of this.pauseListeners) listener(this.settings.paused);
    if (!this.settings.paused) for (const resolve of this.resumeWaiters.splice(0)) resolve();
  }
}

function consume<T extends FaultRule>(rule: T): T | null {
  if (rule.count === undefined) return rule;
  return rule.count <= 1 ? null : { ...rule, count: rule.count - 1 };
}

/** Reads and checks fault settings sent to the control endpoint; names the first bad field. */
export function parseFaultPatch(body: unknown): Partial<FaultSettings> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TypeError('fault settings must be a JSON object');
  const input = body as Record<string, unknown>;
  const out: Partial<FaultSettings> = {};
  for (const [key, value] of Object.entries(input)) {
    switch (key) {
      case 'latencyMs':
      case 'expireNextWatches':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${key} must be a non-negative number`);
        out[key] = value;
        break;
      case 'paused':
        if (typeof value !== 'boolean') throw new TypeError('paused must be true or false');
        out.paused = value;
        break;
      case 'throttle':
      case 'serverErrors':
        if (value !== null) checkRule(key, value);
        out[key] = value as ThrottleRule | null;
        break;
      default:
        throw new TypeError(`unknown fault setting "${key}"; known: latencyMs, throttle, serverErrors, paused, expireNextWatches`);
    }
  }
  return out;
}

function checkRule(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`${name} must be an object or null`);
  const rule = value as Record<string, unknown>;
  if (rule.share !== undefined && (typeof rule.share !== 'number' || rule.share < 0 || rule.share > 1))
    throw new TypeError(`${name}.share must be between 0 and 1`);
  for (const list of ['verbs', 'resources']) {
    const v = rule[list];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string')))
      throw new TypeError(`${name}.${list} must be a list of strings`);
  }
  for (const n of ['count', 'retryAfterSeconds']) {
    const v = rule[n];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0))
      throw new TypeError(`${name}.${n} must be a non-negative integer`);
  }
}
