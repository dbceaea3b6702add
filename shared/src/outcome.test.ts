import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryableError, TerminalError, ThrottledError } from './errors.ts';
import { outcomeFromError, requeueAfter } from './outcome.ts';

describe('Function: outcomeFromError', () => {
  it('parks a TerminalError, retries a plain or non-Error throw, pauses on throttling', () => {
    assert.equal(outcomeFromError(new TerminalError('bad spec')).kind, 'terminal');
    assert.deepEqual(outcomeFromError(new RetryableError('reset')), { kind: 'error', code: 'RETRYABLE', message: 'reset' });
    assert.deepEqual(outcomeFromError(new TypeError('x is undefined')), { kind: 'error', code: 'TypeError', message: 'x is undefined' });
    assert.deepEqual(outcomeFromError('a string'), { kind: 'error', code: 'THROWN', message: 'a string' });
    assert.deepEqual(outcomeFromError(new ThrottledError('429', 2_000)), { kind: 'throttled', retryAfterMs: 2_000, message: '429' });
  });
  it('reads requeueAfter durations', () => {
    assert.deepEqual(requeueAfter('30s'), { kind: 'requeueAfter', delayMs: 30_000 });
    assert.throws(() => requeueAfter(-1), RangeError);
  });
});
