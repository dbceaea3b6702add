// The versioned job payload of a reconcile request (identity only) and its validation on both ends of the queue.
import { z } from 'zod';
import { PayloadError } from '../errors.ts';
import { formatKey, type ObjectKey, parseKey } from '../object-key.ts';

/** Why a key was enqueued; it sets the request's priority (event before manual before resync). */
export type RequestReason = 'event' | 'manual' | 'resync';

export const REQUEST_REASONS: readonly RequestReason[] = ['event', 'manual', 'resync'];

/**
 * BullMQ priorities (lower runs first) of each reason: a fresh event must not wait behind a resync
 * of every object, and a person's `conveyor enqueue` must not wait behind the resync either.
 */
export const REASON_PRIORITY: Readonly<Record<RequestReason, number>> = { event: 1, manual: 2, resync: 3 };

/** What the watcher, the CLI and the manual-enqueue API hand to the queue. */
export interface EnqueueRequest {
  key: ObjectKey;
  reason: RequestReason;
  /** W3C trace context (`traceparent`) to continue in the worker. */
  trace?: string;
  /** When the watcher saw the event behind this request (ms since the epoch): the start of `conveyor_event_to_reconcile_start_seconds`. */
  eventAt?: number;
}

/** The only protocol version this code writes and reads. */
export const PAYLOAD_VERSION = 1;

const payloadV1 = z.strictObject({
  v: z.literal(PAYLOAD_VERSION),
  key: z.string().min(1),
  reason: z.enum(['event', 'manual', 'resync']),
  /** When the request was made (ms since the epoch). */
  at: z.number().int().nonnegative(),
  trace: z.string().min(1).max(512).optional(),
  /** When the watcher saw the event behind the request (ms since the epoch). Added in 0.2: workers older than that refuse it. */
  eventAt: z.number().int().nonnegative().optional(),
});

/** The payload as stored in Redis: plain JSON, so other languages and versions can read it. */
export type RequestPayload = z.output<typeof payloadV1>;

/** A payload after validation, with its key parsed. */
export interface DecodedRequest {
  key: ObjectKey;
  reason: RequestReason;
  at: number;
  trace?: string;
  eventAt?: number;
}

/** Builds the v1 payload; throws InvalidKeyError for a key Kubernetes would not accept. */
export function encodeRequest(request: EnqueueRequest, at: number): RequestPayload {
  if (!REQUEST_REASONS.includes(request.reason))
    throw new PayloadError(`reason "${String(request.reason)}" is not one of ${REQUEST_REASONS.join(', ')}`);
  const payload: RequestPayload = { v: PAYLOAD_VERSION, key: formatKey(request.key), reason: request.reason, at };
  if (request.trace !== undefined) payload.trace = request.trace;
  if (request.eventAt !== undefined) payload.eventAt = Math.floor(request.eventAt);
  return payloadV1.parse(payload);
}

/** Validates a payload read from a job; throws PayloadError naming the problem (unknown version, bad field, bad key). */
export function decodeRequest(data: unknown): DecodedRequest {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new PayloadError('payload is not a JSON object');
  const version = (data as { v?: unknown }).v;
  if (version !== PAYLOAD_VERSION) {
    throw new PayloadError(
      `payload version ${JSON.stringify(version) ?? 'undefined'} is not supported; this worker reads v${PAYLOAD_VERSION}`,
    );
  }
  const result = payloadV1.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new PayloadError(`payload v1 is malformed: ${problems.join('; ')}`);
  }
  let key: ObjectKey;
  try {
    key = parseKey(result.data.key);
  } catch (error) {
    throw new PayloadError(`payload v1 is malformed: key: ${(error as Error).message}`, { cause: error });
  }
  const decoded: DecodedRequest = { key, reason: result.data.reason, at: result.data.at };
  if (result.data.trace !== undefined) decoded.trace = result.data.trace;
  if (result.data.eventAt !== undefined) decoded.eventAt = result.data.eventAt;
  return decoded;
}
