// The one error of a Kubernetes API call: HTTP status, the Status body's reason, details and message, and Retry-After.
import { ApiException } from '@kubernetes/client-node';
import { ConveyorError, type ErrorCode } from '../errors.ts';

/** What a Status body says about the objects involved (`details` of metav1.Status). */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: { reason?: string; message?: string; field?: string }[];
  retryAfterSeconds?: number;
}

export interface KubeApiErrorInit {
  statusCode: number;
  /** `reason` of the Status body (NotFound, Conflict, Invalid, AlreadyExists, …); '' when there was none. */
  reason?: string;
  message: string;
  details?: StatusDetails;
  /** From the Retry-After header (or details.retryAfterSeconds); a 429 without one gets DEFAULT_RETRY_AFTER_MS. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A non-2xx answer from the API server, whichever client made the call. 409 carries the CONFLICT
 * code, 429 the THROTTLED code (the whole queue then waits `retryAfterMs`) and 401 the BLOCKED code
 * (the worker's credentials are refused: the whole queue pauses, see BlockedError); every other
 * status is RETRYABLE: the per-key backoff decides. Match on `statusCode` and `reason`, never the message.
 */
export class KubeApiError extends ConveyorError {
  readonly statusCode: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(init: KubeApiErrorInit) {
    super(codeOf(init.statusCode), true, init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.statusCode = init.statusCode;
    this.reason = init.reason ?? '';
    this.details = init.details;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** One field another manager owns, from a server-side apply's 409 (a `FieldManagerConflict` cause). */
export interface FieldConflict {
  /** The other manager, as the API server names it (`kubectl-edit`, `"editor" using v1` is reported as `editor`). */
  manager: string;
  /** The field path, such as `.data.color` or `.status.conditions[type="Ready"].status`. */
  field: string;
}

/**
 * A server-side apply refused because fields it sets belong to other managers (409, one
 * `FieldManagerConflict` cause per field). Retryable like every conflict: the other manager may
 * give the field up; a controller that is the authority over those fields applies with `force`.
 */
export class FieldConflictError extends KubeApiError {
  /** Our field manager, whose apply was refused. */
  readonly manager: string;
  readonly conflicts: readonly FieldConflict[];

  constructor(applied: string, manager: string, conflicts: readonly FieldConflict[], cause: KubeApiError) {
    const fields = conflicts.map((c) => `${c.field} (owned by "${c.manager}")`).join(', ');
    super({
      statusCode: 409,
      reason: cause.reason,
      message: `apply of ${applied} by field manager "${manager}" conflicts on ${fields}: another manager set them; it must give them up, or the controller applies with force to take them over`,
      ...(cause.details === undefined ? {} : { details: cause.details }),
      cause,
    });
    this.manager = manager;
    this.conflicts = conflicts;
  }
}

/**
 * The field conflicts of a server-side apply's 409, or undefined when the 409 is not one (a stale
 * resourceVersion). kube-apiserver names the manager only inside each cause's message:
 * `conflict with "editor"`, `conflict with "editor" using v1`, `... with subresource "status"`.
 */
export function fieldConflictsOf(error: KubeApiError): FieldConflict[] | undefined {
  if (error.statusCode !== 409) return undefined;
  const causes = (error.details?.causes ?? []).filter((c) => c.reason === 'FieldManagerConflict');
  if (causes.length === 0) return undefined;
  return causes.map((c) => ({ manager: /^conflict with "([^"]*)"/.exec(c.message ?? '')?.[1] ?? '', field: c.field ?? '' }));
}

function codeOf(status: number): ErrorCode {
  if (status === 409) return 'CONFLICT';
  if (status === 429) return 'THROTTLED';
  // The API server refuses the worker's own credentials: every request would fail the same way.
  if (status === 401) return 'BLOCKED';
  return 'RETRYABLE';
}

/** When a 429 carries no usable Retry-After, wait this long (kube-apiserver sends 1 s for max-in-flight). */
export const DEFAULT_RETRY_AFTER_MS = 1_000;

/** Retry-After in milliseconds, delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.max(0, Math.round(Number(text) * 1_000));
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The error for a failed response: the Status body's message, reason and details when the body is
 * one (a proxy's HTML page is kept as the start of its text), and the Retry-After header.
 */
export function kubeApiErrorFrom(request: string, statusCode: number, body: string, retryAfter: string | null | undefined): KubeApiError {
  let reason = '';
  let message = body.slice(0, 500);
  let details: StatusDetails | undefined;
  try {
    const status = JSON.parse(body) as { reason?: unknown; message?: unknown; details?: unknown };
    if (typeof status.reason === 'string') reason = status.reason;
    if (typeof status.message === 'string') message = status.message;
    if (status.details !== null && typeof status.details === 'object') details = status.details as StatusDetails;
  } catch {
    // Not a Status body: keep the raw start of it.
  }
  let retryAfterMs =
    parseRetryAfter(retryAfter) ?? (details?.retryAfterSeconds === undefined ? undefined : details.retryAfterSeconds * 1_000);
  // A 429 always says how long to wait, so the queue-wide pause never has to guess.
  if (statusCode === 429) retryAfterMs ??= DEFAULT_RETRY_AFTER_MS;
  return new KubeApiError({
    statusCode,
    reason,
    message: `${request}: ${statusCode}${reason === '' ? '' : ` ${reason}`}: ${message}`,
    ...(details === undefined ? {} : { details }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** The HTTP status of a failed Kubernetes call, whether it came from our client or client-node's typed APIs. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof KubeApiError) return error.statusCode;
  if (error instanceof ApiException) return error.code;
  return undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusCodeOf(error) === 404;
}

/** 409 Conflict: the object changed since we read it. */
export function isConflict(error: unknown): boolean {
  return statusCodeOf(error) === 409;
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

/** Turns a 429 thrown by client-node's typed APIs into the KubeApiError the outcome mapping understands. */
export function normalizeKubeError(error: unknown): unknown {
  if (error instanceof ApiException && error.code === 429) {
    return new KubeApiError({
      statusCode: 429,
      reason: 'TooManyRequests',
      message: 'API server answered 429 Too Many Requests',
      retryAfterMs: parseRetryAfter(headerOf(error.headers, 'retry-after')) ?? DEFAULT_RETRY_AFTER_MS,
      cause: error,
    });
  }
  return error;
}

/** A header of client-node's header record, whatever its case. */
export function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}
