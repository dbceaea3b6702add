// `conveyor bench`: runs the benchmark scenarios B1–B7 and writes docs/BENCHMARKS.md with a chart per scenario (or JSON to stdout).
import { resolve } from 'node:path';
import { type Command, EXIT, parseFlags, UsageError } from './command.ts';

const IDS = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7'] as const;
type Id = (typeof IDS)[number];
const SIZES = ['tiny', 'default', 'large'] as const;

function parseOnly(value: string | undefined): Id[] {
  if (value === undefined) return [];
  const ids = value.split(',').map((s) => s.trim().toUpperCase());
  const unknown = ids.filter((id) => !(IDS as readonly string[]).includes(id));
  if (unknown.length > 0 || ids.length === 0) {
    throw new UsageError(`--only takes scenario ids from ${IDS.join(',')}, got "${value}"`);
  }
  return ids as Id[];
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run the benchmarks (B1–B7) and write docs/BENCHMARKS.md',
  usage:
    'conveyor bench [--size tiny|default|large] [--only B1,B3] [--json] [--out <file> | --no-write] [--lambda | --no-lambda] [--note <text>]',
  async run(args, io) {
    const { values } = parseFlags(args, {
      size: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      lambda: { type: 'boolean' },
      'no-lambda': { type: 'boolean' },
      'no-write': { type: 'boolean' },
      note: { type: 'string' },
    });
    const size = values.size ?? 'default';
    if (!(SIZES as readonly string[]).includes(size)) throw new UsageError(`--size must be one of ${SIZES.join(', ')}, got "${size}"`);
    const only = parseOnly(values.only);
    if (values.lambda === true && values['no-lambda'] === true) throw new UsageError('--lambda and --no-lambda contradict each other');
    if (values.out !== undefined && values['no-write'] === true) throw new UsageError('--out and --no-write contradict each other');
    // B3 through serverless-offline adds about 15 s: part of the default and large runs, not of the tiny smoke run.
    const lambda = values.lambda === true || (values['no-lambda'] !== true && size !== 'tiny');
    // Loaded only now: parsing flags and printing usage stay quick.
    const { runBench } = await import('../test/bench/run-bench.ts');
    const { describeEnvironment, writeReport } = await import('../test/bench/bench-report.ts');
    const { runPendingCleanups } = await import('../test/bench/bench-support.ts');
    // Ctrl-C or SIGTERM stops the servers and processes the running scenario started, then exits.
    const onSignal = (signal: NodeJS.Signals) => {
      io.err(`conveyor bench: ${signal}, stopping what the benchmark started`);
      void runPendingCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let run: Awaited<ReturnType<typeof runBench>>;
    try {
      run = await runBench(only, {
        size: size as 'tiny' | 'default' | 'large',
        lambda,
        log: (line) => io.err(line),
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const env = describeEnvironment();
    if (values.json === true) {
      io.out(JSON.stringify({ size, environment: env, elapsedMs: run.elapsedMs, missing: run.missing, results: run.results }, null, 2));
    } else {
      for (const r of run.results) {
        const goal = r.goal.holds === undefined ? 'reported' : r.goal.holds ? 'holds' : 'does NOT hold';
        io.out(`${r.id} ${r.title}: ${r.figure.label} ${r.figure.value} ${r.figure.unit}; ratio ${r.ratio} — ${r.goal.text}: ${goal}`);
      }
      for (const id of run.missing) io.out(`${id}: not built yet in this version`);
    }
    if (values['no-write'] !== true) {
      const out = resolve(values.out ?? 'docs/BENCHMARKS.md');
      const notes = [
        `Total run time ${(run.elapsedMs / 1000).toFixed(0)} s.`,
        ...(values.note === undefined ? [] : [values.note]),
        ...run.missing.map((id) => `${id}: not built yet in this version.`),
      ];
      writeReport(out, run.results, env, size as 'tiny' | 'default' | 'large', notes);
      io.err(`report written to ${out}`);
    }
    return EXIT.ok;
  },
};
