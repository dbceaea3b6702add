import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setCondition } from './conditions.ts';

describe('Function: setCondition', () => {
  const at = (iso: string) => () => new Date(iso);
  const ready = { type: 'Ready', status: 'True' as const, reason: 'Ok', message: 'fine' };

  it('stamps a new condition with the transition time', () => {
    assert.deepEqual(setCondition(undefined, ready, at('2026-01-01T00:00:00.123Z')), [
      { ...ready, lastTransitionTime: '2026-01-01T00:00:00Z' },
    ]);
  });

  it('keeps the transition time when only the message changes, so an unchanged status stays byte-equal', () => {
    const first = setCondition(undefined, ready, at('2026-01-01T00:00:00Z'));
    const again = setCondition(first, { ...ready, message: 'still fine' }, at('2026-02-02T00:00:00Z'));
    assert.equal(again[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
  });

  it('moves the transition time when the status flips, leaving other conditions alone', () => {
    const first = setCondition(
      [{ ...ready, type: 'Synced', lastTransitionTime: '2025-01-01T00:00:00Z' }],
      ready,
      at('2026-01-01T00:00:00Z'),
    );
    const flipped = setCondition(first, { ...ready, status: 'False' }, at('2026-03-03T00:00:00Z'));
    assert.deepEqual(
      flipped.map((c) => [c.type, c.status, c.lastTransitionTime]),
      [
        ['Synced', 'True', '2025-01-01T00:00:00Z'],
        ['Ready', 'False', '2026-03-03T00:00:00Z'],
      ],
    );
  });
});
