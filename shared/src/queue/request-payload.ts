// The versioned job payload of a reconcile request (identity only) and its validation on both ends of the queue.
//
// # Versions
// v2 (written since issue 21): `{ v: 2, r, at, e?, t? }`. The object key is not in the payload: every job
// id is `<encoded key>~<suffix>` (reconcile-queue.ts), so the key is read from the job id. The key was
// already written three more times per job (job id, deduplication id, the options' copy of the job id);
// a fourth copy in the payload made each job ~60 B longer in Redis and cost the watcher a key format per
// request. v1 (`{ v: 1, key, reason, at, trace?, eventAt? }`) is still read, so requests queued by an
// older watcher run after an upgrade; workers older than v2 refuse v2 payloads (they park them), so
// workers and dispatchers are upgraded before the watcher (docs/operating.md, Upgrades).
import { z } from 'zod';
import { PayloadError } from '../errors.ts';
import { formatKey, jobIdToKey, type ObjectKey, parseKey } from '../object-key.ts';
import { jobIdKeyPart } from './redis-keys.ts';

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

/** The protocol version this code writes; it also reads {@link PAYLOAD_VERSION_V1}. */
export const PAYLOAD_VERSION = 2;

/** The version written before issue 21 (the key in the payload, reasons and fields spelled out). */
export const PAYLOAD_VERSION_V1 = 1;

/** Longest `traceparent` a payload carries (a W3C traceparent is 55 characters). */
const MAX_TRACE = 512;

/** v2's one-letter reason codes. */
const REASON_CODE: Readonly<Record<RequestReason, 'e' | 'm' | 's'>> = { event: 'e', manual: 'm', resync: 's' };
const REASON_OF_CODE: Readonly<Record<'e' | 'm' | 's', RequestReason>> = { e: 'event', m: 'manual', s: 'resync' };

const payloadV2 = z.strictObject({
  v: z.literal(PAYLOAD_VERSION),
  /** The reason: `e` event, `m` manual, `s` resync. */
  r: z.enum(['e', 'm', 's']),
  /** When the request was made (ms since the epoch). */
  at: z.number().int().nonnegative(),
  /** How long before `at` the watcher saw the event behind the request (ms; `eventAt = at - e`); left out when there was none. */
  e: z.number().int().optional(),
  /** W3C trace context. */
  t: z.string().min(1).max(MAX_TRACE).optional(),
});

const payloadV1 = z.strictObject({
  v: z.literal(PAYLOAD_VERSION_V1),
  key: z.string().min(1),
  reason: z.enum(['event', 'manual', 'resync']),
  at: z.number().int().nonnegative(),
  trace: z.string().min(1).max(MAX_TRACE).optional(),
  eventAt: z.number().int().nonnegative().optional(),
});

/** The payload as written to Redis: plain JSON, so other languages and versions can read it. */
export type RequestPayload = z.output<typeof payloadV2>;

/** The payload v1 that older watchers wrote (still read). */
export type RequestPayloadV1 = z.output<typeof payloadV1>;

/** A payload after validation, with its key parsed. */
export interface DecodedRequest {
  key: ObjectKey;
  reason: RequestReason;
  at: number;
  trace?: string;
  eventAt?: number;
}

/**
 * Builds the v2 payload of a request made at `at`. The key is not part of it (the job id carries it:
 * validate the key where the id is made). Checked by hand rather than by the schema: this runs once per
 * enqueued request, on the watcher's hot path (B2), and what it builds is what `decodeRequest` accepts.
 *
 * # Errors
 * `PayloadError` for an unknown reason, a trace that is empty or longer than 512 characters, or a time
 * that is not a non-negative number.
 */
export function encodeRequest(request: Omit<EnqueueRequest, 'key'>, at: number): RequestPayload {
  if (!Object.hasOwn(REASON_CODE, request.reason))
    throw new PayloadError(`reason "${String(request.reason)}" is not one of ${REQUEST_REASONS.join(', ')}`);
  const madeAt = Math.floor(at);
  if (!(madeAt >= 0)) throw new PayloadError(`request time ${at} is not a time`);
  const payload: RequestPayload = { v: PAYLOAD_VERSION, r: REASON_CODE[request.reason], at: madeAt };
  if (request.eventAt !== undefined) {
    const eventAt = Math.floor(request.eventAt);
    if (!(eventAt >= 0)) throw new PayloadError(`eventAt ${request.eventAt} is not a time`);
    payload.e = madeAt - eventAt;
  }
  if (request.trace !== undefined) {
    if (typeof request.trace !== 'string' || request.trace.length === 0 || request.trace.length > MAX_TRACE)
      throw new PayloadError(`trace must be 1 to ${MAX_TRACE} characters`);
    payload.t = request.trace;
  }
  return payload;
}

/**
 * The v1 payload an older watcher wrote for a request: for tests that show such jobs still run after an
 * upgrade, and nowhere else (this code writes v2).
 */
export function encodeRequestV1(request: EnqueueRequest, at: number): RequestPayloadV1 {
  const payload: RequestPayloadV1 = { v: PAYLOAD_VERSION_V1, key: formatKey(request.key), reason: request.reason, at };
  if (request.trace !== undefined) payload.trace = request.trace;
  if (request.eventAt !== undefined) payload.eventAt = Math.floor(request.eventAt);
  return payloadV1.parse(payload);
}

/**
 * Validates the payload read from job `jobId` (v2, or v1 from an older watcher); throws PayloadError
 * naming the problem (unknown version, bad field, a key that is not one).
 */
export function decodeRequest(data: unknown, jobId: string): DecodedRequest {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new PayloadError('payload is not a JSON object');
  const version = (data as { v?: unknown }).v;
  if (version === PAYLOAD_VERSION) return decodeV2(data, jobId);
  if (version === PAYLOAD_VERSION_V1) return decodeV1(data);
  throw new PayloadError(
    `payload version ${JSON.stringify(version) ?? 'undefined'} is not supported; this worker reads v${PAYLOAD_VERSION_V1} and v${PAYLOAD_VERSION}`,
  );
}

function decodeV2(data: object, jobId: string): DecodedRequest {
  const result = payloadV2.safeParse(data);
  if (!result.success) throw new PayloadError(`payload v2 is malformed: ${problemsOf(result.error)}`);
  let key: ObjectKey;
  try {
    key = jobIdToKey(jobIdKeyPart(jobId));
  } catch (error) {
    throw new PayloadError(`payload v2: job id "${jobId}" holds no object key: ${(error as Error).message}`, { cause: error });
  }
  const { r, at, e, t } = result.data;
  const decoded: DecodedRequest = { key, reason: REASON_OF_CODE[r], at };
  if (t !== undefined) decoded.trace = t;
  if (e !== undefined) {
    if (at - e < 0) throw new PayloadError(`payload v2 is malformed: e: ${e} puts the event before 1970`);
    decoded.eventAt = at - e;
  }
  return decoded;
}

function decodeV1(data: object): DecodedRequest {
  const result = payloadV1.safeParse(data);
  if (!result.success) throw new PayloadError(`payload v1 is malformed: ${problemsOf(result.error)}`);
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

function problemsOf(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}
