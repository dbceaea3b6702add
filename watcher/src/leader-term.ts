// What runs only while this replica is active (leads, or runs without election): the Watcher streaming into the queue, and the
// autoscaler, which always measures (exporting conveyor_backlog and conveyor_desired_workers) and scales only when enabled.
// A watcher process serving several controllers runs one Watcher and one autoscaler per controller in each term: one
// Lease covers them all, so the autoscalers sizing one Deployment run side by side in one process and it runs the most
// any of them wants (SharedScaleTarget), instead of replicas leading different controllers fighting over it.
//
// The autoscaler runs in shard 0's active replica only (every replica when not sharded is shard 0). The queue is
// one per controller, so one replica sees all of its depth; N shard leaders each sizing the same Deployment would
// fight over it within their stabilisation windows and export N copies of the gauges a KEDA trigger sums. Shard 0
// rather than a Lease of its own: no further Lease, RBAC rule or election to get wrong, and with election shard 0's
// standby takes the autoscaler over with the shard. While shard 0 has no active replica, nobody resizes the workers
// (they keep their count) and the gauges are absent.
//
// Expected flow: setActive(true) builds a fresh Watcher (and autoscaler) with its own metrics
// registry and starts it; setActive(false) stops them, waiting for buffered requests to reach the
// queue and the cursor to be saved. Calls are serialised in the order made, so a quick lose-and-win
// of the Lease never runs two Watchers at once.
// Guarantees: `ready` resolves the first time a term's Watcher has synced every stream; it rejects
// if `close()` comes first. A term that fails to start is logged; with election it leaves the
// replica inactive until it wins again, without election (keepActive) it is retried with backoff.
// close() returns within its grace period even while Redis or the API server is away.
import {
  Backoff,
  type Config,
  type ControllerSpec,
  errorMessage,
  type KubeApiClient,
  type Logger,
  parkedRequestsGauge,
  type ReconcileQueue,
  type RedisConnection,
  settleWithin,
  type WatchCursorStore,
} from '@conveyor/shared';
import { Registry } from 'prom-client';
import { type Autoscaler, startAutoscaler } from './autoscaler/autoscaler.ts';
import { DeploymentScaleTarget, DispatcherConcurrencyTarget, type ScaleTarget, SharedScaleTarget } from './autoscaler/scale-targets.ts';
import { formatShard, type Shard } from './sharding.ts';
import { Watcher, watcherSettingsFrom } from './watcher.ts';

/** One controller the process watches for: its queue, cursor, and the client its watch requests are counted on. */
export interface WatchUnit {
  controller: ControllerSpec;
  /** Its configuration: the process's, with its share of each worker's slots as `worker.concurrency` (controller-set.ts). */
  config: Config;
  client: KubeApiClient;
  queue: ReconcileQueue;
  cursor: WatchCursorStore;
}

export interface LeaderTermDeps {
  units: readonly WatchUnit[];
  config: Config;
  logger: Logger;
  /** The process's client: the autoscaler's Deployment target. */
  client: KubeApiClient;
  connection: RedisConnection;
  shard: Shard | undefined;
  /** Told when this replica becomes active (true) or stops being so (false). */
  onActive?: (active: boolean) => void;
}

/** One period of being active: a Watcher (and, on shard 0, an autoscaler) per controller, each with its own registry. */
export interface Term {
  registries: Registry[];
  /** By controller name, in the order of the units. */
  watchers: Map<string, Watcher>;
  autoscalers: Autoscaler[];
}

/** Every Watcher of the term has synced every stream. */
export function termReady(term: Term | undefined): boolean {
  return term !== undefined && [...term.watchers.values()].every((w) => w.ready);
}

export class LeaderTerms {
  readonly ready: Promise<void>;
  private readonly d: LeaderTermDeps;
  private current: Term | undefined;
  private closing = false;
  private transitions: Promise<void> = Promise.resolve();
  private settleReady: { resolve: () => void; reject: (error: Error) => void };

  constructor(deps: LeaderTermDeps) {
    this.d = deps;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.ready = promise;
    this.ready.catch(() => undefined);
    this.settleReady = { resolve, reject };
  }

  /** The running term, if this replica is active now. */
  get term(): Term | undefined {
    return this.current;
  }

  /** Activations and deactivations run one after the other, in the order asked; failures are logged. */
  setActive(active: boolean): Promise<void> {
    this.transitions = this.transitions
      .then(() => (active ? this.activate() : this.deactivate()))
      .catch((error: unknown) =>
        this.d.logger.error({ err: errorMessage(error) }, active ? 'cannot start watching' : 'cannot stop watching'),
      );
    return this.transitions;
  }

  /**
   * No election: active from now on. Returns at once; the term starts in the background (it waits
   * for Redis and the API server as long as they are away), and a start that fails is logged and
   * retried with capped backoff until close().
   */
  keepActive(): void {
    const backoff = new Backoff({ base: 1_000, max: this.d.config.watcher.maxBackoff });
    const attempt = (): void => {
      if (this.closing) return;
      this.transitions = this.transitions
        .then(() => this.activate())
        .then(
          () => backoff.reset(),
          (error: unknown) => {
            if (this.closing) return;
            const delay = backoff.next();
            this.d.logger.error({ err: errorMessage(error), retryInMs: delay }, 'cannot start watching; retrying');
            setTimeout(attempt, delay).unref();
          },
        );
    };
    attempt();
  }

  /**
   * Ends the current term for good, within `graceMs` (a term still starting is stopped too, so a
   * Redis or API server that never answered does not hold the process); `ready` rejects if it
   * never resolved.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.settleReady.reject(new Error('the watcher stopped before its first sync'));
    // Stop the current term directly: an activation still waiting on Redis holds the transition chain.
    await Promise.all([...(this.current?.watchers.values() ?? [])].map((w) => w.stop(graceMs)));
    await settleWithin(this.setActive(false), graceMs);
  }

  private async activate(): Promise<void> {
    if (this.current !== undefined || this.closing) return;
    const { config, logger } = this.d;
    const term: Term = { registries: [], watchers: new Map(), autoscalers: [] };
    for (const unit of this.d.units) {
      const registry = new Registry();
      const watcher = new Watcher({
        controller: unit.controller,
        transport: unit.client,
        queue: unit.queue,
        cursor: unit.cursor,
        registry,
        logger: (this.d.units.length === 1 ? logger : logger.child({ controller: unit.controller.name })).child({ component: 'watch' }),
        shard: this.d.shard,
        ...watcherSettingsFrom(config, this.d.connection, unit.controller.name),
      });
      // Parked requests need a person whether or not any worker runs: exported here, beside the backlog.
      parkedRequestsGauge(registry, unit.controller.name, () => unit.queue.countParked());
      term.registries.push(registry);
      term.watchers.set(unit.controller.name, watcher);
    }
    this.current = term;
    this.d.onActive?.(true);
    try {
      await Promise.all([...term.watchers.values()].map((w) => w.start()));
    } catch (error) {
      this.current = undefined;
      this.d.onActive?.(false);
      await Promise.all([...term.watchers.values()].map((w) => w.stop(0).catch(() => undefined)));
      if (this.closing) return;
      throw error;
    }
    Promise.all([...term.watchers.values()].map((w) => w.whenReady())).then(
      () => this.settleReady.resolve(),
      () => undefined,
    );
    // Always measured while leading (the gauges KEDA or an HPA read); acted on only when the built-in autoscaler is on.
    const runsAutoscaler = (this.d.shard?.index ?? 0) === 0;
    if (runsAutoscaler) {
      const shared = config.autoscaler.enabled && config.autoscaler.target === 'deployment' ? this.sharedDeployment() : undefined;
      this.d.units.forEach((unit, index) => {
        term.autoscalers.push(this.startAutoscaler(unit, term.registries[index] as Registry, shared));
      });
    }
    const autoscaler = !runsAutoscaler
      ? 'shard 0 runs it'
      : config.autoscaler.enabled
        ? `scaling ${config.autoscaler.target}`
        : 'exporting gauges only';
    logger.info({ shard: formatShard(this.d.shard), autoscaler }, 'active: watching');
  }

  /** The one Deployment every controller's autoscaler sizes, when there are several; undefined for one (it scales it directly). */
  private sharedDeployment(): SharedScaleTarget | undefined {
    if (this.d.units.length === 1) return undefined;
    return new SharedScaleTarget(new DeploymentScaleTarget(this.d.client, this.d.config.autoscaler.deployment));
  }

  private startAutoscaler(unit: WatchUnit, registry: Registry, shared: SharedScaleTarget | undefined): Autoscaler {
    const { connection } = this.d;
    const { controller, config, queue } = unit;
    return startAutoscaler({
      controller: controller.name,
      config,
      depth: () => queue.getDepth(),
      connection,
      target: !config.autoscaler.enabled ? undefined : (shared?.forController(controller.name) ?? this.scaleTarget(unit)),
      registry,
      logger: this.d.logger.child({ component: 'autoscaler', ...(this.d.units.length === 1 ? {} : { controller: controller.name }) }),
    });
  }

  private scaleTarget(unit: WatchUnit): ScaleTarget {
    const { config, connection } = this.d;
    return config.autoscaler.target === 'dispatcher'
      ? new DispatcherConcurrencyTarget(connection, config.redis, unit.controller.name, config.autoscaler.interval)
      : new DeploymentScaleTarget(this.d.client, config.autoscaler.deployment);
  }

  private async deactivate(): Promise<void> {
    const term = this.current;
    if (term === undefined) return;
    this.current = undefined;
    this.d.onActive?.(false);
    for (const autoscaler of term.autoscalers) autoscaler.stop();
    await Promise.all([...term.watchers.values()].map((w) => w.stop(this.d.config.watcher.shutdownGrace)));
    this.d.logger.info('stopped watching');
  }
}
