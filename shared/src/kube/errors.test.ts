import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outcomeFromError } from '@conveyor/shared';
import { ApiException } from '@kubernetes/client-node';
import { DEFAULT_RETRY_AFTER_MS, kubeApiErrorFrom, normalizeKubeError, parseRetryAfter } from './errors.ts';

describe('Function: parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const table: [string | undefined, number | undefined][] = [
    ['3', 3_000],
    ['0', 0],
    ['1.5', 1_500],
    ['Thu, 01 Jan 2026 00:00:07 GMT', 7_000],
    [undefined, undefined],
    ['soon', undefined],
  ];
  for (const [header, ms] of table) it(`reads ${JSON.stringify(header)} as ${ms} ms`, () => assert.equal(parseRetryAfter(header, now), ms));
});

describe('Function: kubeApiErrorFrom', () => {
  it('reads the Status body: reason, message and the causes of a 422', () => {
    const body = JSON.stringify({
      kind: 'Status',
      status: 'Failure',
      reason: 'Invalid',
      message: 'Widget.example.com "w" is invalid: spec.size: Invalid value',
      details: { name: 'w', kind: 'Widget', causes: [{ reason: 'FieldValueInvalid', field: 'spec.size' }] },
      code: 422,
    });
    const error = kubeApiErrorFrom('PATCH /apis/example.com/v1/widgets/w', 422, body, null);
    assert.equal(error.statusCode, 422);
    assert.equal(error.reason, 'Invalid');
    assert.equal(error.details?.causes?.[0]?.field, 'spec.size');
    assert.match(error.message, /^PATCH \/apis\/example.com\/v1\/widgets\/w: 422 Invalid: Widget.example.com "w" is invalid/);
  });

  it('gives a 429 without Retry-After the default wait, so the queue-wide pause never guesses', () => {
    const error = kubeApiErrorFrom('GET /api/v1/pods', 429, '', null);
    assert.equal(error.retryAfterMs, DEFAULT_RETRY_AFTER_MS);
    assert.deepEqual(outcomeFromError(error), { kind: 'throttled', retryAfterMs: DEFAULT_RETRY_AFTER_MS, message: error.message });
  });

  it('keeps the start of a body that is not a Status (a proxy page)', () => {
    const error = kubeApiErrorFrom('GET /api/v1/pods', 502, '<html>bad gateway</html>', null);
    assert.equal(error.reason, '');
    assert.match(error.message, /502: <html>bad gateway/);
  });
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
