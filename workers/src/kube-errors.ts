// Errors of Kubernetes API calls: a status code and reason on every failure, 429 as a ThrottledError, matched without reading messages.

import { ConveyorError, ThrottledError } from '@conveyor/shared';
import { ApiException } from '@kubernetes/client-node';

/** A non-2xx answer from the API server (other than 429). 409 Conflict carries the CONFLICT code. */
export class KubeApiError extends ConveyorError {
  readonly statusCode: number;
  /** The `reason` of the Status body, such as NotFound, Conflict, Invalid, AlreadyExists. */
  readonly reason: string;

  constructor(statusCode: number, reason: string, message: string) {
    super(statusCode === 409 ? 'CONFLICT' : 'RETRYABLE', true, message);
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

/** 429 Too Many Requests: the whole queue should wait `retryAfterMs`. */
export class KubeThrottledError extends ThrottledError {
  readonly statusCode = 429;
}

/** When a 429 carries no usable Retry-After, wait this long (kube-apiserver sends 1 s for max-in-flight). */
export const DEFAULT_RETRY_AFTER_MS = 1_000;

/** Retry-After in milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number {
  if (value === undefined || value.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.max(0, Math.round(Number(text) * 1_000));
  const at = Date.parse(text);
  return Number.isNaN(at) ? DEFAULT_RETRY_AFTER_MS : Math.max(0, at - now);
}

/** The HTTP status of a failed Kubernetes call, whether it came from our client or client-node's generated APIs. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof KubeApiError || error instanceof KubeThrottledError) return error.statusCode;
  if (error instanceof ApiException) return error.code;
  return undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusCodeOf(error) === 404;
}

/** The call's result, or undefined when it failed with 404 Not Found. */
export async function unlessNotFound<R>(call: Promise<R>): Promise<R | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** 409 Conflict: the object changed since we read it. */
export function isConflict(error: unknown): boolean {
  return statusCodeOf(error) === 409;
}

/** Turns a 429 thrown by client-node's generated APIs into the ThrottledError the outcome mapping understands. */
export function normalizeKubeError(error: unknown): unknown {
  if (error instanceof ApiException && error.code === 429) {
    return new KubeThrottledError('API server answered 429 Too Many Requests', parseRetryAfter(headerOf(error.headers, 'retry-after')), {
      cause: error,
    });
  }
  return error;
}

export function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}
