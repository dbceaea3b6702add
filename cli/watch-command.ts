// `conveyor watch`: runs the watcher of one controller, or of several under one Lease (list+watch into each one's queue, health, metrics, manual enqueue, autoscaler), until SIGTERM.
import { hostname } from 'node:os';
import { createLogger, errorMessage } from '@conveyor/shared';
import type { WatcherHandle } from '@conveyor/watcher/run-watcher';
import { COMMON_FLAGS, type Command, type Flags, loadConfigOrThrow, parseFlags, UsageError } from './command.ts';
import { controllerSetting, logSay, resolveControllers, runUntilStopped, traced } from './controller-process.ts';

const FLAGS = {
  controller: COMMON_FLAGS.controllers,
  config: COMMON_FLAGS.config,
  shard: {
    type: 'string',
    value: '<i>/<n>|ordinal/<n>',
    description: 'watch one FNV-1a share of the keys; ordinal/<n> takes i from a StatefulSet pod’s host name',
    defaultText: 'all keys',
    setting: 'watcher.shard',
  },
  'leader-elect': { type: 'boolean', description: 'run only while holding the controller’s Lease', setting: 'watcher.leaderElect' },
  port: { type: 'string', value: '<n>', description: 'port of /healthz, /readyz, /metrics and POST /v1/reconcile', setting: 'http.port' },
} as const satisfies Flags;

export const watchCommand: Command = {
  name: 'watch',
  summary: 'watch a controller’s resources and enqueue reconcile requests',
  usage:
    'conveyor watch --controller <module> [--controller <module> …] [--config <file>] [--shard <i>/<n>|ordinal/<n>] [--leader-elect] [--port <n>]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const overrides: Record<string, unknown> = {};
    if (values.controller !== undefined) overrides.controller = controllerSetting(values.controller);
    if (values.port !== undefined) {
      if (!/^\d+$/.test(values.port) || Number(values.port) > 65_535) {
        throw new UsageError(`--port must be a port number from 0 to 65535, got "${values.port}"`);
      }
      overrides['http.port'] = Number(values.port);
    }
    if (values['leader-elect'] === true) overrides['watcher.leaderElect'] = true;
    // Checked before the config: a bad flag is a usage error, not a configuration problem.
    const { parseShard } = await import('@conveyor/watcher/sharding');
    const host = io.env.HOSTNAME ?? hostname();
    const parseShardFlag = (text: string, from: string) => {
      try {
        return parseShard(text, host);
      } catch (error) {
        throw new UsageError(`${from}: ${errorMessage(error)}`);
      }
    };
    const flagShard = values.shard === undefined ? undefined : parseShardFlag(values.shard, '--shard');
    const config = loadConfigOrThrow(values.config, io, overrides, true);
    const shard = flagShard ?? (config.watcher.shard === undefined ? undefined : parseShardFlag(config.watcher.shard, 'watcher.shard'));

    const controllers = await resolveControllers(config, io);
    const { runWatcher } = await import('@conveyor/watcher/run-watcher');
    const logger = createLogger({ level: config.log.level, name: 'watcher' });
    const api = config.api.tokenFile !== undefined || config.api.tokenReview;
    return await runUntilStopped({
      graceMs: config.watcher.shutdownGrace,
      say: logSay(logger),
      stopping: `enqueueing buffered requests, saving the cursor${config.watcher.leaderElect ? ', releasing the lease' : ''}`,
      start: traced<WatcherHandle>(config, 'watcher', () => runWatcher({ controller: controllers, config, logger, shard })),
      started: (handle) =>
        logger.info(
          {
            ...(controllers.length === 1 ? { controller: controllers[0]?.name } : { controllers: controllers.map((c) => c.name) }),
            url: handle.url,
            shard: shard === undefined ? 'all' : `${shard.index}/${shard.count}`,
            leaderElect: config.watcher.leaderElect,
          },
          `serving /healthz /readyz /metrics${api ? ' POST /v1/reconcile' : ''} on ${handle.url}`,
        ),
    });
  },
};
