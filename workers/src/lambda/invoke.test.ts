import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeLambda } from '@conveyor/test/support/fake-lambda';
import { invokeReconcile } from './invoke.ts';
import type { LambdaRequest } from './lambda-request.ts';

const request: LambdaRequest = { v: 1, key: 'example.com/v1/widgets/default/w-1', reason: 'event', enqueuedAt: 1, attempt: 1 };

describe('Function: invokeReconcile', () => {
  let lambda: FakeLambda;
  before(async () => {
    lambda = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done' } }));
  });
  after(async () => {
    await lambda.close();
  });

  it('sends the request (identity only) and returns the function’s outcome', async () => {
    lambda.answerWith(() => ({ kind: 'result', body: { kind: 'requeueAfter', delayMs: 30_000 } }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.deepEqual(invocation.outcome, { kind: 'requeueAfter', delayMs: 30_000 });
    assert.equal(invocation.result, 'ok');
    assert.deepEqual(lambda.invocations.at(-1), { functionName: 'reconcile', payload: request });
    assert.ok(JSON.stringify(request).length < 1024);
  });

  it('maps a FunctionError to a retried error carrying the function’s message', async () => {
    lambda.answerWith(() => ({ kind: 'function-error', message: 'boom in reconcile' }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.equal(invocation.result, 'function-error');
    assert.equal(invocation.outcome.kind, 'error');
    assert.match(invocation.outcome.kind === 'error' ? invocation.outcome.message : '', /boom in reconcile/);
  });

  it('maps TooManyRequestsException to a queue-wide throttle for its Retry-After', async () => {
    lambda.answerWith(() => ({ kind: 'throttle', retryAfterSeconds: 3 }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.equal(invocation.result, 'throttled');
    assert.deepEqual(invocation.outcome.kind === 'throttled' && invocation.outcome.retryAfterMs, 3_000);
  });

  it('throttles for a default second when the 429 names no Retry-After', async () => {
    lambda.answerWith(() => ({ kind: 'throttle' }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.deepEqual(invocation.outcome.kind === 'throttled' && invocation.outcome.retryAfterMs, 1_000);
  });

  const blocking: [string, number, string, string][] = [
    ['a function that does not exist', 404, 'ResourceNotFoundException', 'LAMBDA_FUNCTION_NOT_FOUND'],
    ['access denied', 403, 'AccessDeniedException', 'LAMBDA_ACCESS_DENIED'],
    ['credentials AWS does not know', 403, 'UnrecognizedClientException', 'AWS_CREDENTIALS_REFUSED'],
    ['expired credentials', 403, 'ExpiredTokenException', 'AWS_CREDENTIALS_REFUSED'],
  ];
  for (const [what, status, type, code] of blocking) {
    it(`maps ${what} (${type}) to a queue-wide pause, not a per-request retry`, async () => {
      lambda.answerWith(() => ({ kind: 'aws-error', status, type, message: `${type} says no` }));
      const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
      assert.equal(invocation.result, 'blocked');
      assert.equal(invocation.outcome.kind, 'blocked');
      assert.equal(invocation.outcome.kind === 'blocked' && invocation.outcome.code, code);
      assert.match(invocation.outcome.kind === 'blocked' ? invocation.outcome.message : '', new RegExp(`invoke of reconcile: ${type}: `));
    });
  }

  it('turns an invocation slower than the deadline into a retried timeout error', async () => {
    lambda.answerWith(() => ({ kind: 'hang', ms: 2_000 }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 200);
    assert.equal(invocation.result, 'timeout');
    assert.deepEqual(invocation.outcome.kind === 'error' && invocation.outcome.code, 'TIMEOUT');
  });

  it('refuses a response that is not an outcome, naming what came back', async () => {
    lambda.answerWith(() => ({ kind: 'result', body: { statusCode: 200, body: 'hello' } }));
    const invocation = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.equal(invocation.result, 'bad-response');
    assert.match(invocation.outcome.kind === 'error' ? invocation.outcome.message : '', /not an outcome.*statusCode/);
  });

  it('maps a refused connection and a 5xx to retried errors', async () => {
    lambda.answerWith(() => ({ kind: 'raw', status: 500, body: '{"message":"internal"}' }));
    const fiveHundred = await invokeReconcile(lambda.client(), 'reconcile', request, 5_000);
    assert.equal(fiveHundred.outcome.kind, 'error');
    const closed = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done' } }));
    const client = closed.client();
    await closed.close();
    const refused = await invokeReconcile(client, 'reconcile', request, 5_000);
    assert.equal(refused.result, 'transport-error');
    assert.equal(refused.outcome.kind, 'error');
  });
});
