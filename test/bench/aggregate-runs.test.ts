// Tests of folding repeated benchmark runs: medians and min–max, "holds" on the median, unstable goals, details and chart bars — with plain tables, no benchmark run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aggregateGoal, aggregateRuns, median, spreadOf } from './aggregate-runs.ts';
import { atLeast, atMost, type GoalCheck, inEveryRun, type ScenarioResult } from './bench-support.ts';

/** A run of a B3-like scenario: `ratio` is drain / ideal, judged ≤ 1.1 unless other checks are given. */
function run(ratio: number, extra: Partial<ScenarioResult> = {}, checks?: GoalCheck[]): ScenarioResult {
  return {
    id: 'B3',
    title: 'Burst drain',
    setup: '3000 requests',
    figure: { label: 'drain time', value: Math.round(ratio * 1_500), unit: 'ms' },
    reference: { label: 'ideal', value: 1_500, unit: 'ms' },
    ratio,
    goal: { text: 'drain ≤ 1.10 × ideal', checks: checks ?? [atMost('drain / ideal', ratio, 1.1)] },
    details: { drainMs: Math.round(ratio * 1_500), lambda: 'not run' },
    chart: { title: 'B3', unit: 'ms', bars: [{ label: 'container worker', value: Math.round(ratio * 1_500) }] },
    notes: ['the drain cannot beat {drainMs} ms'],
    ...extra,
  };
}

describe('Function: median', () => {
  const cases: [number[], number][] = [
    [[5], 5],
    [[3, 1, 2], 2],
    [[4.67, 3.49, 2.63, 2.67, 2.49], 2.67],
    [[1, 2, 3, 10], 2.5],
    [[-1, 1], 0],
  ];
  for (const [values, expected] of cases) {
    it(`of ${JSON.stringify(values)} is ${expected}`, () => assert.equal(median(values), expected));
  }

  it('is NaN for no values', () => assert.ok(Number.isNaN(median([]))));

  it('does not reorder the values it was given', () => {
    const values = [3, 1, 2];
    median(values);
    assert.deepEqual(values, [3, 1, 2]);
  });
});

describe('Function: spreadOf', () => {
  it('gives the median, min, max and each run in the order run', () => {
    assert.deepEqual(spreadOf([1.2, 1.05, 1.4]), { median: 1.2, min: 1.05, max: 1.4, values: [1.2, 1.05, 1.4] });
  });
});

describe('Function: aggregateGoal', () => {
  const verdicts: { name: string; ratios: number[]; verdict: string; unstable: boolean; perRun: boolean[] }[] = [
    { name: 'every run meets the goal', ratios: [1.02, 1.05, 1.08], verdict: 'holds', unstable: false, perRun: [true, true, true] },
    { name: 'no run meets the goal', ratios: [1.2, 1.3, 1.25], verdict: 'does not hold', unstable: false, perRun: [false, false, false] },
    {
      name: 'one slow run does not sink a goal the median meets',
      ratios: [1.05, 1.6, 1.07],
      verdict: 'holds',
      unstable: true,
      perRun: [true, false, true],
    },
    {
      name: 'one fast run does not make a goal the median misses hold',
      ratios: [1.2, 1.0, 1.3],
      verdict: 'does not hold',
      unstable: true,
      perRun: [false, true, false],
    },
    { name: 'a single run is judged on its own', ratios: [1.1], verdict: 'holds', unstable: false, perRun: [true] },
    {
      name: 'an even count is judged on the mean of the middle two',
      ratios: [1.0, 1.3],
      verdict: 'does not hold',
      unstable: true,
      perRun: [true, false],
    },
  ];
  for (const c of verdicts) {
    it(`${c.name}: ${c.ratios.join(', ')} → ${c.verdict}${c.unstable ? ', unstable' : ''}`, () => {
      const goal = aggregateGoal(
        c.ratios.map((r) => run(r)),
        true,
      );
      assert.equal(goal.verdict, c.verdict);
      assert.equal(goal.unstable, c.unstable);
      assert.deepEqual(goal.perRun, c.perRun);
    });
  }

  it('judges a threshold on its median and reports the values it was judged on', () => {
    const goal = aggregateGoal([run(1.05), run(1.6), run(1.07)], true);
    const [check] = goal.checks;
    assert.equal(check?.kind, 'threshold');
    if (check?.kind !== 'threshold') return;
    assert.deepEqual(check.value, { median: 1.07, min: 1.05, max: 1.6, values: [1.05, 1.6, 1.07] });
    assert.equal(check.passes, true);
  });

  it('needs a correctness condition in every run: one run that did not converge fails the goal, however good the medians', () => {
    const runs = [true, false, true].map((converged) =>
      run(0.05, {}, [inEveryRun('every key converged', converged), atMost('ratio', 0.05, 1)]),
    );
    const goal = aggregateGoal(runs, true);
    assert.equal(goal.verdict, 'does not hold');
    assert.equal(goal.unstable, true);
    assert.deepEqual(goal.checks[0], { kind: 'every-run', name: 'every key converged', okRuns: 2, passes: false });
  });

  it('needs every check of a compound goal to pass on its median', () => {
    // B1-like: the ratio to the informer meets its limit in every run, the bytes per object in none.
    const runs = [0.04, 0.045, 0.03].map((ratio) => run(ratio, {}, [atMost('ratio', ratio, 0.05), atMost('bytes per object', 250, 200)]));
    assert.equal(aggregateGoal(runs, true).verdict, 'does not hold');
  });

  it('judges "at least" limits the right way round', () => {
    const runs = [0.85, 0.75, 0.82].map((ratio) => run(ratio, {}, [atLeast('enqueue rate / addBulk', ratio, 0.8)]));
    const goal = aggregateGoal(runs, true);
    assert.equal(goal.verdict, 'holds');
    assert.deepEqual(goal.perRun, [true, false, true]);
  });

  it('does not judge a run too small to mean anything, and flags nothing unstable there', () => {
    const goal = aggregateGoal([run(1.05), run(1.6)], false);
    assert.equal(goal.verdict, 'not judged');
    assert.equal(goal.unstable, false);
    assert.deepEqual(goal.perRun, [true, false]);
  });

  it('only reports a scenario whose goal has no checks', () => {
    const goal = aggregateGoal([run(1, {}, []), run(2, {}, [])], true);
    assert.equal(goal.verdict, 'reported');
    assert.deepEqual(goal.perRun, [undefined, undefined]);
  });

  it('refuses runs whose limits differ: a median against a moving limit means nothing', () => {
    assert.throws(
      () => aggregateGoal([run(1, {}, [atMost('r', 1, 1.1)]), run(1, {}, [atMost('r', 1, 1.2)])], true),
      /differs between runs/,
    );
  });
});

describe('Function: aggregateRuns', () => {
  it('gives the figure, reference and ratio as medians with min–max, and keeps every run', () => {
    const result = aggregateRuns([run(1.2), run(1.1), run(1.4)], true);
    assert.equal(result.runs, 3);
    assert.deepEqual(result.ratio, { median: 1.2, min: 1.1, max: 1.4, values: [1.2, 1.1, 1.4] });
    assert.equal(result.figure.median, 1_800);
    assert.equal(result.figure.min, 1_650);
    assert.equal(result.figure.max, 2_100);
    assert.equal(result.figure.label, 'drain time');
    assert.equal(result.reference.median, 1_500);
    assert.deepEqual(
      result.perRun.map((r) => r.ratio),
      [1.2, 1.1, 1.4],
    );
  });

  it('gives numeric details as spreads and other details as each run’s value', () => {
    const result = aggregateRuns([run(1.2), run(1.1, { details: { drainMs: 1_650, lambda: 'not run', extra: 'only here' } })], true);
    assert.deepEqual(result.details.drainMs, { median: 1_725, min: 1_650, max: 1_800, values: [1_800, 1_650] });
    assert.deepEqual(result.details.lambda, { values: ['not run', 'not run'] });
    assert.deepEqual(result.details.extra, { values: ['only here'] });
  });

  it('charts the median of each bar with its range', () => {
    const result = aggregateRuns([run(1.2), run(1.1), run(1.4)], true);
    assert.deepEqual(result.chart.bars, [
      { label: 'container worker', median: 1_800, min: 1_650, max: 2_100, values: [1_800, 1_650, 2_100] },
    ]);
  });

  it('says every key converged only when it did in every run', () => {
    assert.equal(aggregateRuns([run(1, { converged: true }), run(1, { converged: true })], true).converged, true);
    assert.equal(aggregateRuns([run(1, { converged: true }), run(1, { converged: false })], true).converged, false);
    assert.equal('converged' in aggregateRuns([run(1)], true), false);
  });

  it('refuses no runs and runs of different scenarios', () => {
    assert.throws(() => aggregateRuns([], true), /at least one run/);
    assert.throws(() => aggregateRuns([run(1), run(1, { id: 'B7' })], true), /different scenarios/);
  });
});
