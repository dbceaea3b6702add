// Tests of how aggregated benchmark figures read: "median (min–max)", filled `{detail}` placeholders, the verdict words of the console and the report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateRuns } from './aggregate-runs.ts';
import { fillDetails, formatDetail, formatSpread, summaryLine, verdictCell } from './bench-format.ts';
import { atMost, type ScenarioResult } from './bench-support.ts';

function run(ratio: number): ScenarioResult {
  return {
    id: 'B3',
    title: 'Burst drain',
    setup: '3000 requests',
    figure: { label: 'drain time', value: Math.round(ratio * 1_500), unit: 'ms' },
    reference: { label: 'ideal', value: 1_500, unit: 'ms' },
    ratio,
    goal: { text: 'drain ≤ 1.10 × ideal (bound {boundMs} ms)', checks: [atMost('drain / ideal', ratio, 1.1)] },
    details: { boundMs: 1_500 },
    chart: { title: 'B3', unit: 'ms', bars: [] },
    notes: [],
  };
}

describe('Function: formatSpread', () => {
  it('gives the median with min–max when the runs differ', () => {
    assert.equal(formatSpread({ median: 1_692, min: 1_650, max: 1_720, values: [] }, 'ms'), '1,692 ms (1,650–1,720)');
  });

  it('gives the value alone when every run gave the same, or there was one run', () => {
    assert.equal(formatSpread({ median: 1_500, min: 1_500, max: 1_500, values: [] }, 'ms'), '1,500 ms');
    assert.equal(formatSpread({ median: 1.13, min: 1.13, max: 1.13, values: [1.13] }), '1.13');
  });
});

describe('Function: formatDetail', () => {
  it('gives a text detail once when every run agrees, and each run’s value when they do not', () => {
    assert.equal(formatDetail({ values: ['not run', 'not run'] }), 'not run');
    assert.equal(formatDetail({ values: [true, false] }), 'yes / no');
  });
});

describe('Function: fillDetails', () => {
  const details = { p99Ratio: { median: 2.08, min: 1.9, max: 3.1, values: [] }, label: { values: ['x'] } };

  it('puts the median and min–max of the named detail in place of its name', () => {
    assert.equal(fillDetails('at once: {p99Ratio}×, {label}', details), 'at once: 2.08 (1.9–3.1)×, x');
  });

  it('leaves braces that name no detail as they are', () => {
    assert.equal(fillDetails('{nosuch} and { spaced }', details), '{nosuch} and { spaced }');
  });
});

describe('Function: summaryLine and verdictCell', () => {
  it('say a goal that held in some runs only is unstable, and how many runs it held in', () => {
    const result = aggregateRuns([run(1.05), run(1.3), run(1.08)], true);
    assert.equal(
      summaryLine(result),
      'B3 Burst drain: drain time 1,620 ms (1,575–1,950); ratio 1.08 (1.05–1.3) — drain ≤ 1.10 × ideal (bound 1,500 ms): holds, UNSTABLE (held in 2 of 3 runs)',
    );
    assert.equal(verdictCell(result), 'yes, *unstable* (held in 2 of 3 runs)');
  });

  it('say a missed goal plainly', () => {
    const result = aggregateRuns([run(1.2), run(1.3), run(1.25)], true);
    assert.match(summaryLine(result), /: does NOT hold$/);
    assert.equal(verdictCell(result), '**no**');
  });

  it('say a tiny run is not judged instead of "does not hold"', () => {
    const result = aggregateRuns([run(3)], false);
    assert.match(summaryLine(result), /: not judged at tiny size$/);
    assert.equal(verdictCell(result), 'not judged at tiny size');
  });
});
