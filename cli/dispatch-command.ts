// `conveyor dispatch`: takes a controller's requests from its queue and runs each as an AWS Lambda invocation, until SIGTERM.
import { type Command, EXIT, loadConfigOrThrow, parseFlags, UsageError } from './command.ts';

export const dispatchCommand: Command = {
  name: 'dispatch',
  summary: 'run reconciles from the queue as AWS Lambda invocations',
  usage: 'conveyor dispatch --function <name> --controller <module> [--config <file>] [--concurrency <n>] [--endpoint <url>]',
  async run(args, io) {
    const { values } = parseFlags(args, {
      function: { type: 'string' },
      controller: { type: 'string' },
      config: { type: 'string', short: 'c' },
      concurrency: { type: 'string' },
      endpoint: { type: 'string' },
    });
    const overrides: Record<string, unknown> = {};
    if (values.concurrency !== undefined) {
      if (!/^[1-9]\d*$/.test(values.concurrency))
        throw new UsageError(`--concurrency must be a positive integer, got "${values.concurrency}"`);
      overrides['worker.concurrency'] = Number(values.concurrency);
    }
    if (values.controller !== undefined) overrides.controller = values.controller;
    if (values.function !== undefined) overrides['lambda.functionName'] = values.function;
    if (values.endpoint !== undefined) overrides['lambda.endpoint'] = values.endpoint;
    const config = loadConfigOrThrow(values.config, io, overrides);
    if (config.controller === undefined) throw new UsageError('--controller <module> is required (or set controller in the config file)');
    const functionName = config.lambda.functionName;
    if (functionName === undefined) throw new UsageError('--function <name> is required (or set lambda.functionName in the config file)');
    // The module is loaded for its name (the queue); its reconcile runs in Lambda, not here.
    const { loadController } = await import('@conveyor/workers/load-controller');
    const { startDispatcher } = await import('@conveyor/workers/lambda/dispatcher');
    const controller = await loadController(config.controller);

    const dispatcher = await startDispatcher({ controller: controller.name, functionName, config, http: true });
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    io.err(`conveyor dispatch: ${signal}: finishing running invocations (grace ${config.worker.shutdownGrace} ms)`);
    await dispatcher.close();
    return EXIT.ok;
  },
};
