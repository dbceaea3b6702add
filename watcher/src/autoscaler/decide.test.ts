import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AutoscalePolicy, type AutoscaleSample, decideWorkers, initialAutoscaleState } from './decide.ts';

const policy: AutoscalePolicy = {
  minWorkers: 1,
  maxWorkers: 20,
  concurrencyPerWorker: 10,
  latencyTargetMs: 10_000,
  defaultReconcileMs: 100,
  scaleDownStabilizationMs: 60_000,
  idleToZeroMs: 300_000,
  apiBudgetQps: 10_000,
  apiCallsPerReconcile: 2,
};

const sample = (backlog: number, active: number, reconcileMs: number | undefined, now = 0): AutoscaleSample => ({
  now,
  backlog,
  active,
  reconcileMs,
});

describe('Function: decideWorkers', () => {
  // backlog × duration / (target × concurrency), then API budget, max and min.
  const table: [string, Partial<AutoscalePolicy>, AutoscaleSample, number, string][] = [
    ['5,000 waiting at 200 ms needs 10 workers to wait ≤ 10 s', {}, sample(5_000, 0, 200), 10, 'latency'],
    ['5,001 waiting rounds up to 11', {}, sample(5_001, 0, 200), 11, 'latency'],
    ['no measurement yet uses the default duration', {}, sample(5_000, 0, undefined), 5, 'latency'],
    ['busy slots keep their workers', {}, sample(0, 35, 100), 4, 'active'],
    ['more than max is capped', {}, sample(100_000, 0, 200), 20, 'max'],
    ['nothing to do keeps min', {}, sample(0, 0, 100), 1, 'min'],
    ['the API budget caps what can be fed: 100 qps × 0.2 s / (2 × 10) = 1', { apiBudgetQps: 100 }, sample(5_000, 0, 200), 1, 'api-budget'],
    ['Lambda slots: concurrency 1 per worker', { concurrencyPerWorker: 1, maxWorkers: 500 }, sample(1_000, 0, 500), 50, 'latency'],
  ];
  for (const [name, overrides, input, desired, reason] of table) {
    it(name, () => {
      const decision = decideWorkers({ ...policy, ...overrides }, initialAutoscaleState(0), input);
      assert.deepEqual([decision.desired, decision.reason], [desired, reason]);
    });
  }

  it('scales up at once but down only after the stabilisation window', () => {
    let state = initialAutoscaleState(0);
    const steps: [number, number, number][] = [
      // [now, backlog, expected]
      [0, 5_000, 10],
      [15_000, 500, 10],
      [59_000, 0, 10],
      [61_000, 0, 1],
    ];
    for (const [now, backlog, expected] of steps) {
      const decision = decideWorkers(policy, state, sample(backlog, 0, 200, now));
      state = decision.state;
      assert.equal(decision.desired, expected, `at ${now} ms`);
    }
  });

  it('scales to zero after the idle period and back up when work arrives', () => {
    let state = initialAutoscaleState(0);
    const steps: [number, number, number, string][] = [
      [0, 100, 1, 'latency'],
      [200_000, 0, 1, 'min'],
      [299_999, 0, 1, 'min'],
      [300_000, 0, 0, 'idle'],
      [310_000, 3, 1, 'latency'],
    ];
    for (const [now, backlog, expected, reason] of steps) {
      const decision = decideWorkers(policy, state, sample(backlog, 0, 100, now));
      state = decision.state;
      assert.deepEqual([decision.desired, decision.reason], [expected, reason], `at ${now} ms`);
    }
  });

  it('never scales to zero when idleToZero is off', () => {
    const decision = decideWorkers({ ...policy, idleToZeroMs: undefined }, initialAutoscaleState(0), sample(0, 0, 100, 10_000_000));
    assert.equal(decision.desired, 1);
  });
});
