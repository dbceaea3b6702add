import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outcomeFromError } from '@conveyor/shared';
import { ApiException } from '@kubernetes/client-node';
import { DEFAULT_RETRY_AFTER_MS, normalizeKubeError, parseRetryAfter } from './kube-errors.ts';

describe('Function: parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const table: [string | undefined, number][] = [
    ['3', 3_000],
    ['0', 0],
    ['1.5', 1_500],
    ['Thu, 01 Jan 2026 00:00:07 GMT', 7_000],
    [undefined, DEFAULT_RETRY_AFTER_MS],
    ['soon', DEFAULT_RETRY_AFTER_MS],
  ];
  for (const [header, ms] of table) it(`reads ${JSON.stringify(header)} as ${ms} ms`, () => assert.equal(parseRetryAfter(header, now), ms));
});

describe('Function: normalizeKubeError', () => {
  it('turns a 429 from client-node’s typed APIs into a throttled outcome with its Retry-After', () => {
    const error = new ApiException(429, 'Too Many Requests', {}, { 'Retry-After': '4' });
    assert.deepEqual(outcomeFromError(normalizeKubeError(error)), {
      kind: 'throttled',
      retryAfterMs: 4_000,
      message: 'API server answered 429 Too Many Requests',
    });
  });
});
