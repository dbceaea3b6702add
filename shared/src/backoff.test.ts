import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './backoff.ts';

const defaults = { base: 200, max: 1_000_000, jitter: 0.2 };

describe('Function: backoffDelay', () => {
  it('doubles from 200 ms and stops at 1000 s (no jitter drawn)', () => {
    const table: [attempt: number, delay: number][] = [
      [1, 200],
      [2, 400],
      [3, 800],
      [4, 1_600],
      [10, 102_400],
      [13, 819_200],
      [14, 1_000_000],
      [15, 1_000_000],
      [2_000, 1_000_000],
    ];
    for (const [attempt, delay] of table)
      assert.equal(
        backoffDelay(attempt, defaults, () => 0),
        delay,
        `attempt ${attempt}`,
      );
  });

  it('stays within [ceiling × (1 − jitter), ceiling] for any random draw', () => {
    const table: [attempt: number, min: number, max: number][] = [
      [1, 160, 200],
      [2, 320, 400],
      [5, 2_560, 3_200],
      [14, 800_000, 1_000_000],
    ];
    for (const [attempt, min, max] of table) {
      for (const draw of [0, 0.25, 0.5, 0.999_999]) {
        const delay = backoffDelay(attempt, defaults, () => draw);
        assert.ok(delay >= min && delay <= max, `attempt ${attempt}, draw ${draw}: ${delay} not in [${min}, ${max}]`);
      }
    }
  });

  it('follows the configured base, cap and jitter', () => {
    const table: [attempt: number, delay: number][] = [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [4, 5_000],
    ];
    for (const [attempt, delay] of table)
      assert.equal(
        backoffDelay(attempt, { base: 1_000, max: 5_000, jitter: 0.5 }, () => 0),
        delay,
      );
    assert.equal(
      backoffDelay(3, { base: 1_000, max: 5_000, jitter: 0.5 }, () => 0.5),
      3_000,
    );
  });

  it('rejects attempts that are not positive integers', () => {
    for (const attempt of [0, -1, 1.5, Number.NaN]) assert.throws(() => backoffDelay(attempt, defaults), RangeError);
  });
});
