// How aggregated benchmark figures read, in the console line and in docs/BENCHMARKS.md alike: "median (min–max)", the verdict in words, `{detail}` placeholders filled.
import { type AggregatedResult, type DetailSpread, isSpread, type Spread } from './aggregate-runs.ts';
import { formatNumber } from './svg-chart.ts';

/** `1,692 ms (1,650–1,720)`: the median, then min–max when the runs differ. */
export function formatSpread(spread: Spread, unit = ''): string {
  const median = unit === '' ? formatNumber(spread.median) : `${formatNumber(spread.median)} ${unit}`;
  const low = formatNumber(spread.min);
  const high = formatNumber(spread.max);
  return low === high ? median : `${median} (${low}–${high})`;
}

/** A detail as it reads: a spread, one value when every run gave the same, or each run's value. */
export function formatDetail(detail: DetailSpread): string {
  if (isSpread(detail)) return formatSpread(detail);
  const shown = detail.values.map((v) => (typeof v === 'number' ? formatNumber(v) : v === true ? 'yes' : v === false ? 'no' : v));
  return new Set(shown).size <= 1 ? (shown[0] ?? '') : shown.join(' / ');
}

/** Replaces each `{name}` naming a detail with that detail's median (and min–max); other braces stay as written. */
export function fillDetails(text: string, details: Readonly<Record<string, DetailSpread>>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const detail = details[name];
    return detail === undefined ? whole : formatDetail(detail);
  });
}

/** "held in 1 of 3 runs": said beside an unstable verdict. */
function heldIn(result: AggregatedResult): string {
  return `held in ${result.goal.perRun.filter((h) => h === true).length} of ${result.goal.perRun.length} runs`;
}

/** The verdict as the console line says it. */
export function verdictLine(result: AggregatedResult): string {
  const { verdict, unstable } = result.goal;
  const word = verdict === 'does not hold' ? 'does NOT hold' : verdict === 'not judged' ? 'not judged at tiny size' : verdict;
  return unstable ? `${word}, UNSTABLE (${heldIn(result)})` : word;
}

/** The verdict as the report's "holds" cell says it. */
export function verdictCell(result: AggregatedResult): string {
  const { verdict, unstable } = result.goal;
  const word =
    verdict === 'holds' ? 'yes' : verdict === 'does not hold' ? '**no**' : verdict === 'not judged' ? 'not judged at tiny size' : verdict;
  return unstable ? `${word}, *unstable* (${heldIn(result)})` : word;
}

/** One line per scenario for the console. */
export function summaryLine(result: AggregatedResult): string {
  const { figure, ratio, goal } = result;
  return `${result.id} ${result.title}: ${figure.label} ${formatSpread(figure, figure.unit)}; ratio ${formatSpread(ratio)} — ${fillDetails(goal.text, result.details)}: ${verdictLine(result)}`;
}

/** The load average triple as `1.2 / 0.9 / 0.8`. */
export function formatLoad(load: readonly number[]): string {
  return load.map((l) => l.toFixed(2)).join(' / ');
}
