// What one reconcile attempt ended in, as a plain JSON value: workers produce it, Lambda returns it, the queue module applies it.
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { BlockedError, ConveyorError, errorMessage, TerminalError, ThrottledError } from './errors.ts';

export type Outcome =
  /** Finished; nothing more to do until the next event. */
  | { kind: 'done' }
  /** Finished; look again after `delayMs` (an earlier event pulls it forward). */
  | { kind: 'requeueAfter'; delayMs: number }
  /**
   * Failed in a way worth retrying: per-key exponential backoff, parked after the configured attempts. `delayMs`,
   * when the controller's `errorPolicy` chose one, replaces the backoff of this retry.
   */
  | { kind: 'error'; code: string; message: string; delayMs?: number | undefined }
  /** Failed for good: counted, not retried, parked with its message. */
  | { kind: 'terminal'; code: string; message: string }
  /** The API server or Lambda asked us to slow down: the whole queue pauses, no attempt is used. */
  | { kind: 'throttled'; retryAfterMs: number; message: string }
  /**
   * No request can succeed until someone fixes the setup (credentials, the function, permissions):
   * the whole queue pauses for `queue.blockedPause` and tries again, no attempt is used.
   */
  | { kind: 'blocked'; code: string; message: string };

export const done: Outcome = Object.freeze({ kind: 'done' });

/** `requeueAfter('30s')` or `requeueAfter(30_000)`. */
export function requeueAfter(delay: string | number): Outcome {
  const delayMs = typeof delay === 'number' ? delay : parseDuration(delay);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`requeueAfter needs a non-negative delay, got ${delay}`);
  return { kind: 'requeueAfter', delayMs };
}

/** Maps anything a reconcile threw (including non-Error values) to an outcome. */
export function outcomeFromError(error: unknown): Outcome {
  // ThrottledError, or a KubeApiError of a 429: both carry the wait.
  if (error instanceof ThrottledError || (error instanceof ConveyorError && error.code === 'THROTTLED' && hasRetryAfter(error))) {
    return { kind: 'throttled', retryAfterMs: error.retryAfterMs, message: error.message };
  }
  // BlockedError thrown by a reconcile, or a KubeApiError of a 401 (the worker's own credentials refused).
  if (error instanceof BlockedError || (error instanceof ConveyorError && error.code === 'BLOCKED')) {
    return { kind: 'blocked', code: error.code, message: error.message };
  }
  if (error instanceof TerminalError) return { kind: 'terminal', code: error.code, message: error.message };
  if (error instanceof ConveyorError && !error.retryable) return { kind: 'terminal', code: error.code, message: error.message };
  if (error instanceof ConveyorError) return { kind: 'error', code: error.code, message: error.message };
  return { kind: 'error', code: error instanceof Error ? error.name : 'THROWN', message: errorMessage(error) };
}

function hasRetryAfter(error: ConveyorError): error is ConveyorError & { retryAfterMs: number } {
  return typeof (error as { retryAfterMs?: unknown }).retryAfterMs === 'number';
}

/** The shape of an Outcome; other fields are dropped. */
const outcomeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('done') }),
  z.object({ kind: z.literal('requeueAfter'), delayMs: z.number().finite().min(0) }),
  z.object({ kind: z.literal('error'), code: z.string(), message: z.string(), delayMs: z.number().finite().min(0).optional() }),
  z.object({ kind: z.literal('terminal'), code: z.string(), message: z.string() }),
  z.object({ kind: z.literal('throttled'), retryAfterMs: z.number().finite().min(0), message: z.string() }),
  z.object({ kind: z.literal('blocked'), code: z.string(), message: z.string() }),
]);

/**
 * The one check of an outcome that came from code Conveyor does not control — a processor, a
 * reconcile's return value, a Lambda function's reply. Each caller decides what a bad one means.
 */
export function parseOutcome(value: unknown): { outcome: Outcome } | { problem: string } {
  const parsed = outcomeSchema.safeParse(value);
  if (parsed.success) return { outcome: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
  return { problem: `${where}${issue?.message ?? 'invalid'}` };
}
