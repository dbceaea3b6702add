// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: acquire when free or expired, renew, step down, release.
//
// Expected flow: a candidate GETs the Lease (creating it when absent). It takes the Lease when nobody
// holds it or when the holder's record has not changed for leaseDuration *as measured on this
// replica's clock* (so clock skew between replicas does not matter). The leader renews every
// leaseDuration/3 with a PUT carrying the resourceVersion it read, so two candidates can never both
// win a write. A leader that cannot renew for 2/3 of the lease steps down before anyone else may
// consider the Lease expired. stop() steps down and releases the Lease (holderIdentity cleared), so a
// standby takes over at its next retry instead of after the lease duration.
//
// Errors: a 403 on the Lease means this replica can never lead until RBAC changes. It is logged at
// error level naming the rule that is missing, and `forbidden` says so (the watcher's /readyz then
// fails: a standby that cannot take over is not ready); the first Lease request that succeeds clears it.
import { type Clock, errorMessage, KubeApiError, type KubeTransport, type Logger, systemClock } from '@conveyor/shared';

export interface LeaderElectionOptions {
  transport: Pick<KubeTransport, 'request'>;
  namespace: string;
  name: string;
  /** Unique per replica and per process start. */
  identity: string;
  leaseDurationMs: number;
  /** How often the leader renews. @defaultValue leaseDurationMs / 3 */
  renewIntervalMs?: number;
  /**
   * How often a standby reads the Lease. It judges expiry by when it saw the record change, so a
   * takeover after a crash takes up to leaseDuration + 2 × this. @defaultValue leaseDurationMs / 6
   */
  retryIntervalMs?: number;
  /** A leader that could not renew for this long steps down. @defaultValue leaseDurationMs × 2/3 */
  renewDeadlineMs?: number;
  logger: Logger;
  /** Called with true on becoming leader (not awaited) and false on stepping down (awaited). Calls alternate. */
  onChange(leading: boolean): Promise<void> | void;
  /** @defaultValue systemClock */
  clock?: Clock;
}

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [field: string]: unknown };
  spec?: LeaseSpec;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly o: LeaderElectionOptions;
  private readonly clock: Clock;
  private readonly path: string;
  private readonly abort = new AbortController();
  private lease: Lease | undefined;
  private leadingValue = false;
  private lastRenew = 0;
  /** The holder's record as last seen, and when (our clock) it last changed. */
  private observed = '';
  private observedAt = 0;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private forbiddenValue: string | undefined;
  private forbiddenLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(options: LeaderElectionOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases/${encodeURIComponent(options.name)}`;
  }

  get leading(): boolean {
    return this.leadingValue;
  }

  get identity(): string {
    return this.o.identity;
  }

  /** Why the API server refuses this replica the Lease (RBAC), while it does; undefined once a Lease request succeeds. */
  get forbidden(): string | undefined {
    return this.forbiddenValue;
  }

  start(): void {
    if (this.loop !== undefined) throw new Error('leader election already started');
    this.o.logger.info({ identity: this.o.identity, leaseDurationMs: this.o.leaseDurationMs }, 'campaigning for the lease');
    this.loop = this.run();
  }

  /** Steps down (awaiting onChange(false)), then releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.loop;
    if (!this.leadingValue) return;
    await this.setLeading(false);
    const lease = this.lease;
    if (lease === undefined) return;
    const now = this.clock.now();
    try {
      await this.o.transport.request(
        'PUT',
        this.path,
        {
          ...lease,
          spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) },
        },
        AbortSignal.timeout(Math.max(500, Math.floor(this.o.leaseDurationMs / 3))),
      );
      this.o.logger.info('released the lease');
    } catch (error) {
      // Someone else wrote it meanwhile (then it is not ours to release), or the API server is away: it expires.
      this.o.logger.warn({ err: errorMessage(error) }, 'cannot release the lease; it expires after its duration');
    }
  }

  private get leaseSeconds(): number {
    return Math.max(1, Math.ceil(this.o.leaseDurationMs / 1_000));
  }

  private async run(): Promise<void> {
    const renewEvery = this.o.renewIntervalMs ?? Math.max(100, Math.floor(this.o.leaseDurationMs / 3));
    const retryEvery = this.o.retryIntervalMs ?? Math.max(100, Math.floor(this.o.leaseDurationMs / 6));
    const renewDeadline = this.o.renewDeadlineMs ?? Math.floor((this.o.leaseDurationMs * 2) / 3);
    while (!this.abort.signal.aborted) {
      try {
        if (this.leadingValue) await this.renew();
        else await this.tryAcquire();
        this.forbiddenValue = undefined;
      } catch (error) {
        if (error instanceof LeaseForbiddenError) this.reportForbidden(error);
        else this.o.logger.warn({ err: errorMessage(error), leading: this.leadingValue }, 'lease request failed; trying again');
      }
      if (this.abort.signal.aborted) break;
      if (this.leadingValue && this.clock.now() - this.lastRenew > renewDeadline) {
        this.o.logger.warn({ sinceRenewMs: this.clock.now() - this.lastRenew }, 'could not renew the lease in time: stepping down');
        await this.setLeading(false);
      }
      await this.sleep(this.leadingValue ? renewEvery : retryEvery);
    }
  }

  private async tryAcquire(): Promise<void> {
    let lease: Lease;
    try {
      lease = (await this.leaseRequest('GET', this.path)) as Lease;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.statusCode === 404)) throw error;
      await this.create();
      return;
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity ?? '', spec.renewTime ?? '', spec.leaseDurationSeconds ?? 0]);
    const now = this.clock.now();
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = now;
    }
    const holder = spec.holderIdentity ?? '';
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseSeconds) * 1_000;
    if (holder !== '' && holder !== this.o.identity && now < this.observedAt + durationMs) {
      this.lease = lease;
      return; // held by someone alive
    }
    const taken = holder !== this.o.identity;
    const body: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.leaseSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (taken && holder !== '' ? 1 : 0),
      },
    };
    try {
      this.lease = (await this.leaseRequest('PUT', this.path, body)) as Lease;
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 409) return; // another candidate won this round
      throw error;
    }
    this.lastRenew = now;
    this.o.logger.info({ previous: holder === '' ? undefined : holder }, 'acquired the lease');
    await this.setLeading(true);
  }

  private async create(): Promise<void> {
    const now = this.clock.now();
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.leaseSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      },
    };
    const collection = this.path.slice(0, this.path.lastIndexOf('/'));
    try {
      this.lease = (await this.leaseRequest('POST', collection, body)) as Lease;
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 409) return; // created by another candidate first
      throw error;
    }
    this.lastRenew = now;
    this.o.logger.info('created and acquired the lease');
    await this.setLeading(true);
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    const now = this.clock.now();
    try {
      this.lease = (await this.leaseRequest('PUT', this.path, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: this.o.identity, renewTime: microTime(now) },
      })) as Lease;
      this.lastRenew = now;
      return;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.statusCode === 409)) throw error;
    }
    // Someone wrote the Lease since we read it: still ours (read again and renew next time), or taken.
    const fresh = (await this.leaseRequest('GET', this.path)) as Lease;
    this.lease = fresh;
    if (fresh.spec?.holderIdentity !== this.o.identity) {
      this.o.logger.warn({ holder: fresh.spec?.holderIdentity }, 'lost the lease to another replica: stepping down');
      await this.setLeading(false);
    }
  }

  private async setLeading(leading: boolean): Promise<void> {
    if (this.leadingValue === leading) return;
    this.leadingValue = leading;
    // Starting to lead is not awaited: renewals must go on however long the start takes. Stepping down is.
    const changed = Promise.resolve(this.o.onChange(leading));
    if (leading) changed.catch(() => undefined);
    else await changed;
  }

  /** One request on the Lease; a 403 becomes a LeaseForbiddenError naming the RBAC verb it needed. */
  private async leaseRequest(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<unknown> {
    try {
      return await this.o.transport.request(method, path, body, this.signal());
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 403) throw new LeaseForbiddenError(LEASE_VERB[method], error);
      throw error;
    }
  }

  /**
   * At error level, because no retry will help until someone changes RBAC; once a minute, because the
   * loop retries every few seconds and the first line already says everything.
   */
  private reportForbidden(error: LeaseForbiddenError): void {
    const { namespace, name } = this.o;
    const rule =
      error.verb === 'create'
        ? 'apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]'
        : `apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [${name}], verbs: [get, update]`;
    const first = this.forbiddenValue === undefined;
    this.forbiddenValue = `forbidden to ${error.verb} Lease ${namespace}/${name}: the Role in ${namespace} needs { ${rule} }`;
    const now = this.clock.now();
    if (!first && now - this.forbiddenLoggedAt < 60_000) return;
    this.forbiddenLoggedAt = now;
    this.o.logger.error(
      {
        lease: `${namespace}/${name}`,
        verb: error.verb,
        missingRule: rule,
        err: error.cause instanceof Error ? error.cause.message : undefined,
      },
      `cannot take part in leader election: ${this.forbiddenValue}; this replica will never lead until RBAC allows it (conveyor build derives the Role for every shard's Lease)`,
    );
  }

  /** Each Lease request gives up after a third of the lease: a hung API server must not stop the renew-deadline check. */
  private signal(): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(Math.max(500, Math.floor(this.o.leaseDurationMs / 3)))]);
  }

  /** Waits `ms`, or until stop() wakes the loop. */
  private sleep(ms: number): Promise<void> {
    const wake = new AbortController();
    this.wake = () => wake.abort();
    return this.clock.sleep(ms, wake.signal);
  }
}

const LEASE_VERB = { GET: 'get', PUT: 'update', POST: 'create' } as const;

/** The API server refused a Lease request (RBAC): retrying alone will not help. */
class LeaseForbiddenError extends Error {
  readonly verb: 'get' | 'update' | 'create';
  constructor(verb: 'get' | 'update' | 'create', cause: KubeApiError) {
    super(`forbidden to ${verb} the lease: ${cause.message}`, { cause });
    this.verb = verb;
  }
}
