// `conveyor dispatch`: takes the requests of one controller (or several, each from its own queue with its own slots) and runs each as an AWS Lambda invocation of one function, until SIGTERM.
import { createLogger } from '@conveyor/shared';
import { COMMON_FLAGS, type Command, type Flags, loadConfigOrThrow, parseFlags, UsageError } from './command.ts';
import { controllerOverrides, logSay, resolveControllers, runUntilStopped, traced } from './controller-process.ts';

const FLAGS = {
  function: { type: 'string', value: '<name>', description: 'the reconcile function’s name or ARN', setting: 'lambda.functionName' },
  controller: COMMON_FLAGS.controllers,
  config: COMMON_FLAGS.config,
  concurrency: { ...COMMON_FLAGS.concurrency, description: 'invocations at once (the autoscaler turns it when it runs)' },
  endpoint: {
    type: 'string',
    value: '<url>',
    description: 'another Lambda endpoint, such as serverless-offline’s http://127.0.0.1:3002',
    defaultText: 'AWS Lambda in lambda.region',
    setting: 'lambda.endpoint',
  },
} as const satisfies Flags;

export const dispatchCommand: Command = {
  name: 'dispatch',
  summary: 'run reconciles from the queue as AWS Lambda invocations',
  usage:
    'conveyor dispatch --function <name> --controller <module> [--controller <module> …] [--config <file>] [--concurrency <n>] [--endpoint <url>]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const overrides = controllerOverrides(values);
    if (values.function !== undefined) overrides['lambda.functionName'] = values.function;
    if (values.endpoint !== undefined) overrides['lambda.endpoint'] = values.endpoint;
    const config = loadConfigOrThrow(values.config, io, overrides, true);
    const functionName = config.lambda.functionName;
    if (functionName === undefined) throw new UsageError('--function <name> is required (or set lambda.functionName in the config file)');
    // The controllers are loaded for their names (the queues); their reconciles run in Lambda, not here.
    const names = (await resolveControllers(config, io)).map((c) => c.name);
    const { startDispatcher } = await import('@conveyor/workers/lambda/dispatcher');
    const { startWorkerSet } = await import('@conveyor/workers/worker-set');

    const logger = createLogger({ level: config.log.level, name: 'dispatcher' });
    return await runUntilStopped({
      graceMs: config.worker.shutdownGrace,
      say: logSay(logger),
      stopping: 'no new requests; finishing running invocations',
      start: traced<{ close(): Promise<void> }>(config, 'dispatcher', (signal) => {
        const [only] = names;
        if (names.length === 1 && only !== undefined)
          return startDispatcher({ controller: only, functionName, config, http: true, logger, signal });
        // Several: one function serves them all (each request names its controller), each queue with its own slots.
        return startWorkerSet({
          names,
          config,
          logger,
          start: (name, own) => startDispatcher({ controller: name, functionName, config: own, logger, signal }),
        });
      }),
    });
  },
};
