// Several controllers in one worker or dispatcher process: one member per controller — its own queue, BullMQ Worker,
// slots, metrics and API-budget accounting — behind one /healthz, /readyz and /metrics.
//
// Expected flow: serve HTTP (not ready yet), split `worker.concurrency` into each controller's slots
// (controller-set.ts), start every member at once, and answer ready once all of them run and each reaches Redis.
// Guarantees: a member that fails to start closes every other one (and the server) before the start rejects;
// close() closes the members together, each within the grace period. With one controller, the caller starts that
// member alone, exactly as before: this set is only used for two or more.
import { type Config, combinedMetrics, configsPerController, type Logger, type OpsServer, startOpsServer } from '@conveyor/shared';
import { Registry } from 'prom-client';

/** What each member of the set is: a container worker or a dispatcher of one controller. */
export interface WorkerSetMember {
  registry: Registry;
  /** Reaches Redis now. */
  isReady(): boolean;
  close(graceMs?: number): Promise<void>;
}

export interface WorkerSetOptions<M extends WorkerSetMember> {
  /** The controllers' names, in the order given. */
  names: readonly string[];
  config: Config;
  logger: Logger;
  /** Starts one controller's member with its own configuration (its slots as `worker.concurrency`), serving no HTTP of its own. */
  start(name: string, config: Config): Promise<M>;
  /** Serve /healthz, /readyz and /metrics on config.http. @defaultValue true */
  http?: boolean;
}

export interface WorkerSet<M extends WorkerSetMember> {
  url: string | undefined;
  /** Each controller's member, by name. */
  members: ReadonlyMap<string, M>;
  close(graceMs?: number): Promise<void>;
}

export async function startWorkerSet<M extends WorkerSetMember>(options: WorkerSetOptions<M>): Promise<WorkerSet<M>> {
  const { config, logger } = options;
  const configs = configsPerController(config, options.names);
  const members = new Map<string, M>();
  let closing = false;
  let started = false;
  let http: OpsServer | undefined;
  if (options.http ?? true) {
    http = await startOpsServer({
      host: config.http.host,
      port: config.http.port,
      health: () => (closing ? { ok: false, body: 'stopping\n' } : { ok: true, body: 'ok\n' }),
      ready: () => {
        if (closing) return { ok: false, body: 'stopping\n' };
        const away = [...members].filter(([, member]) => !member.isReady()).map(([name]) => name);
        if (!started) return { ok: false, body: 'starting\n' };
        return away.length === 0 ? { ok: true, body: 'ok\n' } : { ok: false, body: `Redis unreachable (${away.join(', ')})\n` };
      },
      metrics: async () => ({
        contentType: Registry.PROMETHEUS_CONTENT_TYPE,
        body: await combinedMetrics(
          undefined,
          [...members.values()].map((m) => m.registry),
        ),
      }),
    });
    logger.info({ url: http.url }, `serving /healthz /readyz /metrics on ${http.url}`);
  }
  const starts = options.names.map(async (name) => {
    const member = await options.start(name, configs.get(name) as Config);
    members.set(name, member);
    return member;
  });
  const results = await Promise.allSettled(starts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    closing = true;
    await Promise.all([...members.values()].map((m) => m.close(0).catch(() => undefined)));
    await http?.close();
    throw failed.reason;
  }
  started = true;
  logger.info(
    { controllers: Object.fromEntries(options.names.map((name) => [name, configs.get(name)?.worker.concurrency])) },
    'serving every controller; slots per controller',
  );
  let closed: Promise<void> | undefined;
  return {
    url: http?.url,
    members,
    close(graceMs = config.worker.shutdownGrace) {
      closed ??= (async () => {
        closing = true;
        await Promise.all([...members.values()].map((m) => m.close(graceMs)));
        await http?.close();
      })();
      return closed;
    },
  };
}
