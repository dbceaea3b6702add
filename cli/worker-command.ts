// `conveyor worker`: runs the reconciles of one controller (or several, each from its own queue with its own slots) in this process until SIGTERM, then drains and exits 0.
import { createLogger, errorMessage } from '@conveyor/shared';
import { COMMON_FLAGS, type Command, loadConfigOrThrow, parseFlags } from './command.ts';
import { controllerOverrides, logSay, resolveControllers, runUntilStopped, traced } from './controller-process.ts';

const FLAGS = { controller: COMMON_FLAGS.controllers, config: COMMON_FLAGS.config, concurrency: COMMON_FLAGS.concurrency } as const;

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run reconciles from the queue in this process',
  usage: 'conveyor worker --controller <module> [--controller <module> …] [--config <file>] [--concurrency <n>]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const overrides = controllerOverrides(values);
    const config = loadConfigOrThrow(values.config, io, overrides, true);
    const controllers = await resolveControllers(config, io);
    // Loaded here, not at the top: other subcommands should not pay for the worker's dependencies.
    const { startContainerWorker } = await import('@conveyor/workers/container-worker');
    const { startWorkerSet } = await import('@conveyor/workers/worker-set');

    const logger = createLogger({ level: config.log.level, name: 'worker' });
    // A reconcile that leaves a rejected promise unawaited must not take the whole worker down with it.
    process.on('unhandledRejection', (reason) => {
      logger.error({ err: errorMessage(reason) }, 'unhandled promise rejection, most likely from a reconcile that did not await it');
    });
    return await runUntilStopped({
      graceMs: config.worker.shutdownGrace,
      say: logSay(logger),
      stopping: 'no new requests; finishing running reconciles',
      start: traced<{ close(): Promise<void> }>(config, 'worker', (signal) => {
        const [only] = controllers;
        if (controllers.length === 1 && only !== undefined) return startContainerWorker({ controller: only, config, logger, signal });
        // Several: one BullMQ Worker per controller's queue, each with its share of --concurrency, behind one /metrics.
        const byName = new Map(controllers.map((c) => [c.name, c]));
        const names = [...byName.keys()];
        return startWorkerSet({
          names,
          config,
          logger,
          start: (name, own) =>
            startContainerWorker({
              controller: byName.get(name) as (typeof controllers)[number],
              config: own,
              logger,
              signal,
              http: false,
            }),
        });
      }),
    });
  },
};
