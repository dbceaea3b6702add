// Folds repeated runs of one benchmark scenario into one result: the median with min–max of every figure, "holds" judged on the median, and a goal that flips between runs flagged unstable.
//
// Why medians: on a shared 2-core machine one run of a latency or drain scenario can be twice as slow as the
// next (issue 22 saw B4's ratio go 3.49, 2.63, 2.67, 2.49, 4.67 on a quiet machine). The median of a few runs
// ignores one outlier either way; the min–max beside it says how far the runs spread.
import { type GoalCheck, holdsIn, type ScenarioId, type ScenarioResult, withinLimit } from './bench-support.ts';

/** A figure measured in every run: its median, extremes and the values of each run in order. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

/** A figure with its name and unit, over the runs. */
export interface MeasureSpread extends Spread {
  label: string;
  unit: string;
}

/** A detail that is not a number in every run (a description, a flag): its value in each run. */
export interface DetailValues {
  values: (number | string | boolean)[];
}

export type DetailSpread = Spread | DetailValues;

/** How a goal came out: judged on the median, only reported, or not judged because the run was too small to mean anything. */
export type Verdict = 'holds' | 'does not hold' | 'reported' | 'not judged';

/** One goal check over the runs. */
export type CheckOutcome =
  | { kind: 'threshold'; name: string; op: '<=' | '<' | '>=' | '>'; limit: number; value: Spread; passes: boolean }
  | { kind: 'every-run'; name: string; okRuns: number; passes: boolean };

export interface AggregatedGoal {
  text: string;
  verdict: Verdict;
  /** Whether each run on its own met the goal; undefined entries for a scenario that only reports. */
  perRun: (boolean | undefined)[];
  /** The goal held in some runs and not in others: the verdict on the median is not one to lean on. */
  unstable: boolean;
  checks: CheckOutcome[];
}

export interface AggregatedResult {
  id: ScenarioId;
  title: string;
  setup: string;
  runs: number;
  figure: MeasureSpread;
  reference: MeasureSpread;
  ratio: Spread;
  goal: AggregatedGoal;
  /** Every key converged in every run (scenarios where that is checked). */
  converged?: boolean;
  details: Record<string, DetailSpread>;
  chart: { title: string; unit: string; bars: ({ label: string } & Spread)[] };
  notes: string[];
  /** Each run's own result, in the order they ran. */
  perRun: ScenarioResult[];
}

/** The middle value, or the mean of the two middle ones for an even count; NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] as number) + upper) / 2;
}

export function spreadOf(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values: [...values] };
}

export function isSpread(detail: DetailSpread): detail is Spread {
  return 'median' in detail;
}

function aggregateChecks(runs: readonly ScenarioResult[]): CheckOutcome[] {
  const first = runs[0]?.goal.checks ?? [];
  for (const run of runs) {
    if (run.goal.checks.length !== first.length) throw new Error(`${run.id}: the runs have different goal checks`);
  }
  return first.map((check, i) => {
    const all = runs.map((run) => run.goal.checks[i] as GoalCheck);
    if (check.kind === 'every-run') {
      const okRuns = all.filter((c) => c.kind === 'every-run' && c.ok).length;
      return { kind: 'every-run', name: check.name, okRuns, passes: okRuns === runs.length };
    }
    const values = all.map((c) => {
      // A limit that moved between runs would make the median meaningless: that is a scenario bug.
      if (c.kind !== 'threshold' || c.op !== check.op || c.limit !== check.limit) {
        throw new Error(`${runs[0]?.id}: goal check "${check.name}" differs between runs`);
      }
      return c.value;
    });
    const value = spreadOf(values);
    return {
      kind: 'threshold',
      name: check.name,
      op: check.op,
      limit: check.limit,
      value,
      passes: withinLimit(check.op, value.median, check.limit),
    };
  });
}

/** The goal over the runs: every check judged on its median (thresholds) or in every run (correctness), unless `judge` is false. */
export function aggregateGoal(runs: readonly ScenarioResult[], judge: boolean): AggregatedGoal {
  const checks = aggregateChecks(runs);
  const perRun = runs.map((run) => holdsIn(run.goal));
  const text = runs[0]?.goal.text ?? '';
  if (checks.length === 0) return { text, verdict: 'reported', perRun, unstable: false, checks };
  if (!judge) return { text, verdict: 'not judged', perRun, unstable: false, checks };
  const holds = checks.every((c) => c.passes);
  const unstable = perRun.some((h) => h === true) && perRun.some((h) => h === false);
  return { text, verdict: holds ? 'holds' : 'does not hold', perRun, unstable, checks };
}

/** Details by name, in the order the runs first name them: numbers as spreads, anything else as each run's value. */
function aggregateDetails(runs: readonly ScenarioResult[]): Record<string, DetailSpread> {
  const names = [...new Set(runs.flatMap((run) => Object.keys(run.details)))];
  const details: Record<string, DetailSpread> = {};
  for (const name of names) {
    const values = runs.map((run) => run.details[name]).filter((v) => v !== undefined);
    details[name] = values.every((v) => typeof v === 'number') ? spreadOf(values) : { values };
  }
  return details;
}

/** Chart bars by label, in the first run's order: each the median of the runs that drew it. */
function aggregateBars(runs: readonly ScenarioResult[]): ({ label: string } & Spread)[] {
  const labels = [...new Set(runs.flatMap((run) => run.chart.bars.map((bar) => bar.label)))];
  return labels.map((label) => ({
    label,
    ...spreadOf(runs.flatMap((run) => run.chart.bars.filter((bar) => bar.label === label).map((bar) => bar.value))),
  }));
}

/**
 * Folds the runs of one scenario (at least one, all of the same scenario and size) into one result. Texts —
 * title, setup, labels, notes — come from the first run: they name sizes, not measurements, so every run has
 * the same. `judge` is false for a size too small for its goals to mean anything.
 */
export function aggregateRuns(runs: readonly ScenarioResult[], judge: boolean): AggregatedResult {
  const first = runs[0];
  if (first === undefined) throw new Error('aggregateRuns needs at least one run');
  if (runs.some((run) => run.id !== first.id))
    throw new Error(`aggregateRuns: runs of different scenarios (${runs.map((r) => r.id).join(', ')})`);
  const convergedRuns = runs.map((run) => run.converged).filter((c) => c !== undefined);
  return {
    id: first.id,
    title: first.title,
    setup: first.setup,
    runs: runs.length,
    figure: { label: first.figure.label, unit: first.figure.unit, ...spreadOf(runs.map((run) => run.figure.value)) },
    reference: { label: first.reference.label, unit: first.reference.unit, ...spreadOf(runs.map((run) => run.reference.value)) },
    ratio: spreadOf(runs.map((run) => run.ratio)),
    goal: aggregateGoal(runs, judge),
    ...(convergedRuns.length === 0 ? {} : { converged: convergedRuns.every((c) => c) }),
    details: aggregateDetails(runs),
    chart: { title: first.chart.title, unit: first.chart.unit, bars: aggregateBars(runs) },
    notes: first.notes,
    perRun: [...runs],
  };
}
