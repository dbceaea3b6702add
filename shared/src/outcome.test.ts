import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockedError, RetryableError, TerminalError, ThrottledError } from './errors.ts';
import { kubeApiErrorFrom } from './kube/errors.ts';
import { outcomeFromError, requeueAfter } from './outcome.ts';

describe('Function: outcomeFromError', () => {
  it('parks a TerminalError, retries a plain or non-Error throw, pauses on throttling', () => {
    assert.equal(outcomeFromError(new TerminalError('bad spec')).kind, 'terminal');
    assert.deepEqual(outcomeFromError(new RetryableError('reset')), { kind: 'error', code: 'RETRYABLE', message: 'reset' });
    assert.deepEqual(outcomeFromError(new TypeError('x is undefined')), { kind: 'error', code: 'TypeError', message: 'x is undefined' });
    assert.deepEqual(outcomeFromError('a string'), { kind: 'error', code: 'THROWN', message: 'a string' });
    assert.deepEqual(outcomeFromError(new ThrottledError('429', 2_000)), { kind: 'throttled', retryAfterMs: 2_000, message: '429' });
  });
  it('pauses the whole queue for a failure no retry can fix: BlockedError, and a 401 for the worker’s own credentials', () => {
    assert.deepEqual(outcomeFromError(new BlockedError('no credentials')), { kind: 'blocked', code: 'BLOCKED', message: 'no credentials' });
    const unauthorized = kubeApiErrorFrom(
      'GET /api/v1/configmaps',
      401,
      '{"kind":"Status","reason":"Unauthorized","message":"Unauthorized"}',
      null,
    );
    assert.equal(outcomeFromError(unauthorized).kind, 'blocked');
    assert.equal(outcomeFromError(kubeApiErrorFrom('GET /api/v1/configmaps', 403, '{"reason":"Forbidden"}', null)).kind, 'error');
  });
  it('reads requeueAfter durations', () => {
    assert.deepEqual(requeueAfter('30s'), { kind: 'requeueAfter', delayMs: 30_000 });
    assert.throws(() => requeueAfter(-1), RangeError);
  });
});
