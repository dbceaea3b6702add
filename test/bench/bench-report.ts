// The benchmark report: machine, load and versions, how many runs, one table row per scenario (medians with min–max), and an SVG chart per scenario linked from the markdown.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisServerBinary } from '@conveyor/test/support/redis-server';
import type { AggregatedResult } from './aggregate-runs.ts';
import { fillDetails, formatDetail, formatLoad, formatSpread, verdictCell } from './bench-format.ts';
import { DEFAULT_RUNS, type SizeName } from './bench-support.ts';
import { barChartSvg, formatNumber } from './svg-chart.ts';

export interface Environment {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  /** os.loadavg() (1, 5, 15 minutes) before the first scenario and after the last: how busy the machine was. */
  loadAverage: { before: number[]; after: number[] };
  node: string;
  redis: string;
  bullmq: string;
  clientNode: string;
}

function packageVersion(name: string): string {
  try {
    // The package's own package.json is not always exported; find it from the resolved entry point.
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    for (let i = 0; i < 6; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name && pkg.version !== undefined) return pkg.version;
      } catch {
        // not this directory
      }
      dir = dirname(dir);
    }
  } catch {
    // not installed
  }
  return 'unknown';
}

/** os.loadavg(), rounded to hundredths. */
export function sampleLoadAverage(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

/** The machine and versions; `loadBefore` is the load average sampled before the run, the one after is sampled now. */
export function describeEnvironment(loadBefore: number[]): Environment {
  const redis = spawnSync(redisServerBinary(), ['--version'], { encoding: 'utf8' }).stdout.match(/v=(\S+)/)?.[1] ?? 'unknown';
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    loadAverage: { before: loadBefore, after: sampleLoadAverage() },
    node: process.version,
    redis,
    bullmq: packageVersion('bullmq'),
    clientNode: packageVersion('@kubernetes/client-node'),
  };
}

export interface ReportOptions {
  size: SizeName;
  /** Runs of every scenario. */
  runs: number;
  /** Further lines for the Machine section (run time, who ran it). */
  notes: string[];
}

/** The command that makes this report, with only the options that differ from the defaults. */
function command(size: SizeName, runs: number): string {
  const args = [...(size === 'default' ? [] : ['--size', size]), ...(runs === DEFAULT_RUNS[size] ? [] : ['--runs', String(runs)])];
  return args.length === 0 ? '`npm run bench`' : `\`npm run bench -- ${args.join(' ')}\``;
}

/** What a reader needs to know to read the figures: how many runs, what is shown, how goals are judged. */
function method({ size, runs }: ReportOptions): string[] {
  const lines = [
    runs === 1
      ? `- Sizes: \`${size}\`; one run of every scenario, on fresh servers and processes.`
      : `- Sizes: \`${size}\`; ${runs} runs of every scenario, each on fresh servers and processes, taken in turn (every scenario once, then again) so that a busy minute on the machine lands in one run of several scenarios rather than in every run of one.`,
  ];
  if (runs > 1) {
    lines.push(
      '- Every figure is the median of the runs, with min–max in brackets when they differ. "holds" is judged on the median (a correctness condition, such as every key converged, in every run); a goal that held in some runs and not in others is marked *unstable*. Each run\'s ratio is listed under its scenario below, and every figure of every run is in `--json`.',
    );
  }
  if (size === 'tiny')
    lines.push('- A tiny run shows that the harness works; at these sizes the figures mean nothing, so no goal is judged.');
  return lines;
}

const OP_SIGNS = { '<=': '≤', '<': '<', '>=': '≥', '>': '>' } as const;

/** Each check of the goal with the value it was judged on. */
function checkLine(result: AggregatedResult): string | undefined {
  if (result.goal.checks.length === 0) return undefined;
  const checks = result.goal.checks.map((c) =>
    c.kind === 'threshold'
      ? `${c.name} ${formatNumber(c.value.median)} ${OP_SIGNS[c.op]} ${formatNumber(c.limit)}: ${c.passes ? 'met' : 'missed'}`
      : `${c.name} in ${c.okRuns} of ${result.runs} run${result.runs === 1 ? '' : 's'}: ${c.passes ? 'met' : 'missed'}`,
  );
  const on = result.goal.verdict === 'not judged' ? 'not judged at tiny size' : result.runs === 1 ? 'in this run' : 'on the median';
  return `- goal (${on}): ${checks.join('; ')}`;
}

/** Each run's ratio, and whether that run alone met the goal. */
function perRunLine(result: AggregatedResult): string | undefined {
  if (result.runs === 1) return undefined;
  const judged = result.goal.verdict === 'holds' || result.goal.verdict === 'does not hold';
  const runs = result.ratio.values.map((ratio, i) => {
    const held = result.goal.perRun[i];
    return judged && held !== undefined ? `${formatNumber(ratio)} ${held ? 'held' : 'missed'}` : formatNumber(ratio);
  });
  return `- per run (ratio${judged ? ', goal' : ''}): ${runs.join(' · ')}`;
}

function scenarioSection(result: AggregatedResult, chartPath: string): string[] {
  const lines = ['', `### ${result.id}`, '', `**${result.title}.** ${result.setup}.`, '', `![${result.chart.title}](${chartPath})`, ''];
  for (const line of [checkLine(result), perRunLine(result)]) if (line !== undefined) lines.push(line);
  for (const [name, detail] of Object.entries(result.details)) lines.push(`- ${name}: ${formatDetail(detail)}`);
  if (result.converged !== undefined)
    lines.push(`- every key converged${result.runs === 1 ? '' : ' in every run'}: ${result.converged ? 'yes' : 'no'}`);
  for (const note of result.notes) lines.push(`- ${fillDetails(note, result.details)}`);
  return lines;
}

/** Writes `out` (markdown) and one SVG per scenario into `<dir of out>/bench/`. */
export function writeReport(out: string, results: readonly AggregatedResult[], env: Environment, options: ReportOptions): void {
  const chartDir = join(dirname(out), 'bench');
  mkdirSync(chartDir, { recursive: true });
  const lines = [
    '# Benchmarks',
    '',
    `Generated by ${command(options.size, options.runs)}. Every figure is a ratio against a reference measured`,
    'in the same run on the same machine, so the ratios, not the absolute numbers, are what to compare between machines.',
    '',
    '## Machine',
    '',
    `- Date: ${env.date}`,
    `- CPU: ${env.cpu}, ${env.cores} cores; memory ${env.memoryGiB} GiB`,
    `- Load average (1 / 5 / 15 min): before the run ${formatLoad(env.loadAverage.before)}, after ${formatLoad(env.loadAverage.after)}`,
    `- Node ${env.node}, Redis ${env.redis}, BullMQ ${env.bullmq}, @kubernetes/client-node ${env.clientNode}`,
    ...method(options),
    ...options.notes.map((n) => `- ${n}`),
    '',
    '## Results',
    '',
    '| scenario | figure | reference | ratio | goal | holds |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    lines.push(
      `| [${r.id} ${r.title}](#${r.id.toLowerCase()}) | ${r.figure.label}: ${formatSpread(r.figure, r.figure.unit)} | ${r.reference.label}: ${formatSpread(r.reference, r.reference.unit)} | ${formatSpread(r.ratio)} | ${fillDetails(r.goal.text, r.details)} | ${verdictCell(r)} |`,
    );
  }
  for (const r of results) {
    const svg = join(chartDir, `${r.id.toLowerCase()}.svg`);
    const subtitle = r.runs === 1 ? undefined : `median of ${r.runs} runs; the lines span min–max`;
    const bars = r.chart.bars.map((b) => ({ label: b.label, value: b.median, low: b.min, high: b.max }));
    writeFileSync(svg, barChartSvg(r.chart.title, r.chart.unit, bars, subtitle));
    lines.push(...scenarioSection(r, relative(dirname(out), svg)));
  }
  lines.push('');
  writeFileSync(out, lines.join('\n'));
}
