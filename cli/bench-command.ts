// `conveyor bench`: runs the benchmark scenarios B1–B10 several times and writes docs/BENCHMARKS.md with medians, min–max and a chart per scenario (or JSON to stdout).
import { resolve } from 'node:path';
import { type Command, EXIT, type Flags, type Io, parseFlags, UsageError } from './command.ts';

const IDS = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'B10'] as const;
type Id = (typeof IDS)[number];
const SIZES = ['tiny', 'default', 'large'] as const;
type Size = (typeof SIZES)[number];
/** As DEFAULT_RUNS in test/bench/bench-support.ts, repeated here so that parsing flags does not load the benchmarks. */
const DEFAULT_RUNS: Record<Size, number> = { tiny: 1, default: 3, large: 3 };

export interface BenchOptions {
  size: Size;
  only: Id[];
  runs: number;
  json: boolean;
  /** Where the report goes; undefined with --no-write. */
  out: string | undefined;
  lambda: boolean;
  note: string | undefined;
}

function parseOnly(value: string | undefined): Id[] {
  if (value === undefined) return [];
  const ids = value.split(',').map((s) => s.trim().toUpperCase());
  const unknown = ids.filter((id) => !(IDS as readonly string[]).includes(id));
  if (unknown.length > 0 || ids.length === 0) {
    throw new UsageError(`--only takes scenario ids from ${IDS.join(',')}, got "${value}"`);
  }
  return ids as Id[];
}

function parseRuns(value: string | undefined, size: Size): number {
  if (value === undefined) return DEFAULT_RUNS[size];
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`--runs takes a whole number of at least 1, got "${value}"`);
  return Number(value);
}

const FLAGS = {
  size: {
    type: 'string',
    value: 'tiny|default|large',
    description: 'tiny (seconds; a smoke run whose goals are not judged), default (about a minute a run), large (the full sizes)',
    defaultText: 'default',
  },
  runs: {
    type: 'string',
    value: '<n>',
    description: 'runs of every scenario; figures are medians with min–max',
    defaultText: `${DEFAULT_RUNS.default} (${DEFAULT_RUNS.tiny} for --size tiny)`,
  },
  only: { type: 'string', value: '<ids>', description: 'some scenarios, such as B1,B3', defaultText: `all: ${IDS.join(',')}` },
  json: { type: 'boolean', description: 'print every run and the medians as JSON on stdout' },
  out: { type: 'string', value: '<file>', description: 'write the report there', defaultText: 'docs/BENCHMARKS.md' },
  'no-write': { type: 'boolean', description: 'write no report' },
  lambda: {
    type: 'boolean',
    description: 'B3 also through the Lambda dispatcher and serverless-offline',
    defaultText: 'on, except at --size tiny',
  },
  'no-lambda': { type: 'boolean', description: 'B3 without Lambda' },
  note: { type: 'string', value: '<text>', description: 'a line for the report’s Machine section', defaultText: 'none' },
} as const satisfies Flags;

/** The options of one `conveyor bench` call, or a UsageError naming what is wrong. */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values } = parseFlags(args, FLAGS);
  const size = values.size ?? 'default';
  if (!(SIZES as readonly string[]).includes(size)) throw new UsageError(`--size must be one of ${SIZES.join(', ')}, got "${size}"`);
  if (values.lambda === true && values['no-lambda'] === true) throw new UsageError('--lambda and --no-lambda contradict each other');
  if (values.out !== undefined && values['no-write'] === true) throw new UsageError('--out and --no-write contradict each other');
  return {
    size: size as Size,
    only: parseOnly(values.only),
    runs: parseRuns(values.runs, size as Size),
    json: values.json === true,
    out: values['no-write'] === true ? undefined : resolve(values.out ?? 'docs/BENCHMARKS.md'),
    // B3 through serverless-offline adds about 10 s a run: part of the default and large runs, not of the tiny smoke run.
    lambda: values.lambda === true || (values['no-lambda'] !== true && size !== 'tiny'),
    note: values.note,
  };
}

/** Runs the scenarios with Ctrl-C and SIGTERM stopping what the running scenario started before the process exits. */
async function runWithCleanup(options: BenchOptions, io: Io) {
  // Loaded only now: parsing flags and printing usage stay quick.
  const { runBench } = await import('../test/bench/run-bench.ts');
  const { runPendingCleanups } = await import('../test/bench/bench-support.ts');
  const onSignal = (signal: NodeJS.Signals) => {
    io.err(`conveyor bench: ${signal}, stopping what the benchmark started`);
    void runPendingCleanups().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runBench(
      options.only,
      { size: options.size, lambda: options.lambda, log: (line) => io.err(line) },
      { runs: options.runs, judge: options.size !== 'tiny' },
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run the benchmarks (B1–B10) several times and write docs/BENCHMARKS.md with their medians',
  usage:
    'conveyor bench [--size tiny|default|large] [--runs <n>] [--only B1,B3] [--json] [--out <file> | --no-write] [--lambda | --no-lambda] [--note <text>]',
  flags: FLAGS,
  async run(args, io) {
    const options = parseBenchArgs(args);
    const { describeEnvironment, sampleLoadAverage, writeReport } = await import('../test/bench/bench-report.ts');
    const { formatLoad, summaryLine } = await import('../test/bench/bench-format.ts');
    const loadBefore = sampleLoadAverage();
    io.err(
      `conveyor bench: ${options.runs} run${options.runs === 1 ? '' : 's'} of every scenario; load average before: ${formatLoad(loadBefore)}`,
    );
    const run = await runWithCleanup(options, io);
    const env = describeEnvironment(loadBefore);
    if (options.json) {
      const { size, runs } = options;
      io.out(
        JSON.stringify({ size, runs, environment: env, elapsedMs: run.elapsedMs, missing: run.missing, results: run.results }, null, 2),
      );
    } else {
      for (const r of run.results) io.out(summaryLine(r));
      for (const id of run.missing) io.out(`${id}: not built yet in this version`);
      io.out(`load average (1 / 5 / 15 min): before ${formatLoad(env.loadAverage.before)}, after ${formatLoad(env.loadAverage.after)}`);
    }
    if (options.out !== undefined) {
      const notes = [
        `Total run time ${(run.elapsedMs / 1000).toFixed(0)} s.`,
        ...(options.note === undefined ? [] : [options.note]),
        ...run.missing.map((id) => `${id}: not built yet in this version.`),
      ];
      writeReport(options.out, run.results, env, { size: options.size, runs: options.runs, notes });
      io.err(`report written to ${options.out}`);
    }
    return EXIT.ok;
  },
};
