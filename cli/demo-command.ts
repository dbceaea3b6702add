// `conveyor demo`: runs the whole pipeline on this machine under churn and exits 0 only when the convergence check holds.
import { type Command, EXIT, type Flags, parseFlags, UsageError } from './command.ts';
import { processStopSources } from './controller-process.ts';

function positiveInt(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

const FLAGS = {
  objects: {
    type: 'string',
    value: '<n>',
    description: 'Widgets to start with (8 to 100000); the burst adds half as many',
    defaultText: '2000',
  },
  workers: { type: 'string', value: '<n>', description: 'most container workers the autoscaler may run (1 to 64)', defaultText: '4' },
  lambda: { type: 'boolean', description: 'run the workers through the dispatcher and serverless-offline' },
  kubeconfig: {
    type: 'string',
    value: '<file>',
    description: 'a real cluster instead of the simulator (leaves the Widget CRD there)',
    defaultText: 'the API simulator',
  },
  follow: { type: 'boolean', description: 'keep churning after the script until Ctrl-C' },
} as const satisfies Flags;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the whole pipeline on this machine under churn, then check convergence',
  usage: 'conveyor demo [--objects <n>] [--workers <n>] [--lambda] [--kubeconfig <file>] [--follow]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const objects = positiveInt('objects', values.objects, 2_000, 8, 100_000);
    const workers = positiveInt('workers', values.workers, 4, 1, 64);
    if (values.lambda === true && values.kubeconfig !== undefined) {
      throw new UsageError(
        '--lambda runs the function under serverless-offline against the simulator; it cannot be combined with --kubeconfig',
      );
    }
    // Loaded only now: parsing flags and printing usage stay quick.
    const { runDemo } = await import('../examples/widgets/demo/run-demo.ts');
    const stop = new AbortController();
    let interrupts = 0;
    // The first Ctrl-C (or SIGTERM, or the exit of the npm that launched it) ends the run cleanly: it
    // prints its summary and stops the servers it started, in order. They run in process groups of
    // their own, so a terminal's Ctrl-C reaches only this process. A second one does not wait.
    const sources = processStopSources();
    const unsubscribe = sources.onStop(() => {
      interrupts += 1;
      if (interrupts > 1) sources.exit(130);
      stop.abort();
    });
    try {
      const result = await runDemo({
        objects,
        workers,
        lambda: values.lambda === true,
        kubeconfig: values.kubeconfig,
        follow: values.follow === true,
        stop: stop.signal,
        out: (chunk) => io.out(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk),
        tty: process.stdout.isTTY === true,
      });
      if (result.interrupted) return EXIT.interrupted;
      return result.converged ? EXIT.ok : EXIT.failure;
    } finally {
      unsubscribe();
    }
  },
};
