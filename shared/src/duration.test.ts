import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from './duration.ts';
import { InvalidArgumentError } from './errors.ts';

describe('Function: parseDuration', () => {
  const table: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['10h', 36_000_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['0s', 0],
    [' 2m ', 120_000],
  ];
  for (const [text, ms] of table) {
    it(`reads "${text}" as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['30', /no unit; write 30ms, 30s/],
    ['5 minutes', /not valid at "5 minutes"/],
    ['-5s', /not valid at "-5s"/],
    ['5d', /not valid at "5d"/],
    ['s', /not valid/],
  ];
  for (const [text, message] of bad) {
    it(`rejects "${text}" with a message naming the problem`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: unknown) => error instanceof InvalidArgumentError && message.test(error.message),
      );
    });
  }
});

describe('Function: formatDuration', () => {
  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1, 999, 1_000, 61_000, 3_600_000, 5_400_250]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
  });
  it('writes the shortest form', () => assert.equal(formatDuration(5_400_000), '1h30m'));
});
