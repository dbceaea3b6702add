// Invokes the reconcile function for one request and turns every way an invocation can end into an Outcome.
//
// Expected flow: InvokeCommand (RequestResponse) → the function runs the same processing as a container
// worker and returns an Outcome as JSON → the dispatcher hands it to the queue module unchanged.
// Guarantees: nothing here throws; every failure is an Outcome the queue applies, so no request is lost:
//   - FunctionError (a throw, a crash, a timeout inside Lambda) → `error`: per-key backoff, parked after the attempts;
//   - TooManyRequestsException / HTTP 429 → `throttled`: the whole queue pauses for Retry-After (default 1 s);
//   - what no retry of any request can get past — no credentials, credentials AWS refuses, a function
//     that does not exist, access denied — → `blocked`: the whole queue pauses (queue.blockedPause)
//     and tries again, so a configuration mistake does not spend every request's attempts;
//   - our own deadline, connection refused/reset, 5xx → `error`: retried with backoff;
//   - a response that is not an Outcome (wrong handler deployed) → `error` naming the problem.
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { type Clock, errorMessage, type Outcome, parseOutcome, systemClock } from '@conveyor/shared';
import { type InvocationTelemetry, type LambdaRequest, telemetryOf } from './lambda-request.ts';

export type InvocationResult = 'ok' | 'function-error' | 'throttled' | 'blocked' | 'timeout' | 'transport-error' | 'bad-response';

/**
 * AWS errors that say the setup is wrong, not the request, with the code the queue's pause is
 * recorded under. CredentialsProviderError comes from the SDK itself, before any request is sent.
 */
const BLOCKING_ERRORS: Readonly<Record<string, string>> = {
  CredentialsProviderError: 'AWS_CREDENTIALS_MISSING',
  UnrecognizedClientException: 'AWS_CREDENTIALS_REFUSED',
  InvalidSignatureException: 'AWS_CREDENTIALS_REFUSED',
  ExpiredTokenException: 'AWS_CREDENTIALS_REFUSED',
  InvalidClientTokenId: 'AWS_CREDENTIALS_REFUSED',
  AccessDeniedException: 'LAMBDA_ACCESS_DENIED',
  ResourceNotFoundException: 'LAMBDA_FUNCTION_NOT_FOUND',
  KMSAccessDeniedException: 'LAMBDA_FUNCTION_MISCONFIGURED',
  KMSDisabledException: 'LAMBDA_FUNCTION_MISCONFIGURED',
  KMSNotFoundException: 'LAMBDA_FUNCTION_MISCONFIGURED',
  InvalidRuntimeException: 'LAMBDA_FUNCTION_MISCONFIGURED',
};

export interface Invocation {
  outcome: Outcome;
  result: InvocationResult;
  durationMs: number;
  /** What the function reported beside its outcome (API requests, a crash); absent when it reported nothing readable. */
  telemetry?: InvocationTelemetry;
}

const DEFAULT_THROTTLE_MS = 1_000;

export async function invokeReconcile(
  lambda: LambdaClient,
  functionName: string,
  request: LambdaRequest,
  timeoutMs: number,
  clock: Clock = systemClock,
): Promise<Invocation> {
  const started = clock.now();
  const finish = (result: InvocationResult, outcome: Outcome): Invocation => ({ result, outcome, durationMs: clock.now() - started });
  let response: InvokeCommandOutput;
  try {
    response = await lambda.send(
      new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: JSON.stringify(request) }),
      {
        abortSignal: AbortSignal.timeout(timeoutMs),
      },
    );
  } catch (error) {
    const e = error as { name?: string; retryAfterSeconds?: string | number; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'TooManyRequestsException' || e.$metadata?.httpStatusCode === 429) {
      const seconds = Number(e.retryAfterSeconds);
      const retryAfterMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1_000 : DEFAULT_THROTTLE_MS;
      return finish('throttled', { kind: 'throttled', retryAfterMs, message: `Lambda throttled ${functionName}: ${errorMessage(error)}` });
    }
    const blocking = e.name === undefined ? undefined : BLOCKING_ERRORS[e.name];
    if (blocking !== undefined || e.$metadata?.httpStatusCode === 403) {
      return finish('blocked', {
        kind: 'blocked',
        code: blocking ?? 'LAMBDA_ACCESS_DENIED',
        message: `invoke of ${functionName}: ${e.name ?? 'AccessDenied'}: ${errorMessage(error)}`,
      });
    }
    if (e.name === 'AbortError' || e.name === 'TimeoutError') {
      return finish('timeout', {
        kind: 'error',
        code: 'TIMEOUT',
        message: `invoke of ${functionName} did not answer within ${timeoutMs} ms`,
      });
    }
    return finish('transport-error', {
      kind: 'error',
      code: e.name ?? 'INVOKE_FAILED',
      message: `invoke of ${functionName} failed: ${errorMessage(error)}`,
    });
  }
  const body = response.Payload === undefined ? '' : Buffer.from(response.Payload).toString('utf8');
  if (response.FunctionError !== undefined) {
    // serverless-offline and Lambda both send { errorMessage, errorType }; errorType is not reliable offline.
    let message = body;
    try {
      const parsed = JSON.parse(body) as { errorMessage?: unknown };
      if (typeof parsed.errorMessage === 'string') message = parsed.errorMessage;
    } catch {}
    return finish('function-error', {
      kind: 'error',
      code: 'FUNCTION_ERROR',
      message: `${functionName} failed (${response.FunctionError}): ${message.slice(0, 500)}`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return finish('bad-response', {
      kind: 'error',
      code: 'PAYLOAD_INVALID',
      message: `${functionName} returned non-JSON: ${body.slice(0, 200)}`,
    });
  }
  const outcome = parseOutcome(parsed);
  if (!('outcome' in outcome)) {
    return finish('bad-response', {
      kind: 'error',
      code: 'PAYLOAD_INVALID',
      message: `${functionName} returned something that is not an outcome (${outcome.problem}): ${body.slice(0, 200)}`,
    });
  }
  const telemetry = telemetryOf(parsed);
  return telemetry === undefined ? finish('ok', outcome.outcome) : { ...finish('ok', outcome.outcome), telemetry };
}
