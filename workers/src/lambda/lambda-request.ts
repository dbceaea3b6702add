// What crosses the Lambda hop: the request an invocation carries (identity only, well under 1 KB) and the telemetry its reply adds to the outcome.
import {
  API_CODE_CLASSES,
  API_VERBS,
  type ApiCodeClass,
  type ApiVerb,
  formatKey,
  type ObjectKey,
  type Outcome,
  parseKey,
} from '@conveyor/shared';
import { z } from 'zod';

export const lambdaRequestSchema = z.strictObject({
  v: z.literal(1),
  /** The controller whose queue the request came from: one function may serve several controllers. */
  controller: z.string().min(1).max(253).optional(),
  key: z.string().min(1).max(600),
  reason: z.enum(['event', 'manual', 'resync']),
  enqueuedAt: z.number().int().min(0),
  attempt: z.number().int().min(1),
  trace: z.string().max(256).optional(),
  /** The dispatcher's job lock: the function records its own writes only while the dispatcher holds it. */
  fence: z.strictObject({ jobId: z.string().min(1).max(1_000), token: z.string().min(1).max(200) }).optional(),
});

export type LambdaRequest = z.output<typeof lambdaRequestSchema>;

/** The request as the queue worker hands it over (structurally the queue module's RequestContext). */
export interface DispatchedRequest {
  /** The controller whose queue it came from (the dispatcher sets it; a function serving several routes by it). */
  controller?: string;
  key: ObjectKey;
  reason: LambdaRequest['reason'];
  enqueuedAt: number;
  attempt: number;
  trace?: string;
  jobId?: string;
  lockToken?: string;
}

export function encodeLambdaRequest(request: DispatchedRequest): LambdaRequest {
  return {
    v: 1,
    ...(request.controller === undefined ? {} : { controller: request.controller }),
    key: formatKey(request.key),
    reason: request.reason,
    enqueuedAt: request.enqueuedAt,
    attempt: request.attempt,
    ...(request.trace === undefined ? {} : { trace: request.trace }),
    ...(request.jobId === undefined || request.lockToken === undefined
      ? {}
      : { fence: { jobId: request.jobId, token: request.lockToken } }),
  };
}

/** Throws PayloadError-like messages naming the field; the handler turns them into a terminal outcome. */
export function decodeLambdaRequest(event: unknown): DispatchedRequest {
  const parsed = lambdaRequestSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`not a Conveyor request: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const { controller, key, reason, enqueuedAt, attempt, trace, fence } = parsed.data;
  return {
    ...(controller === undefined ? {} : { controller }),
    key: parseKey(key),
    reason,
    enqueuedAt,
    attempt,
    ...(trace === undefined ? {} : { trace }),
    ...(fence === undefined ? {} : { jobId: fence.jobId, lockToken: fence.token }),
  };
}

/**
 * What a function reports beside its outcome, for the dispatcher to export: Lambda functions cannot be scraped,
 * so their API requests reach Prometheus through the dispatcher's `/metrics`, under the same names and labels as a
 * container worker's. An invocation that crashes or times out reports nothing (its requests go uncounted).
 */
export interface InvocationTelemetry {
  /** API requests by verb and status code class. */
  api: { verb: ApiVerb; code: ApiCodeClass; count: number }[];
  /** Each request's wait for the API budget (ms), at most {@link MAX_REPORTED_WAITS} of them. */
  budgetWaitMs: number[];
  /** The reconcile crashed on a bug (controller-runtime's panic). */
  panicked: boolean;
}

/** A reconcile's outcome as the handler returns it; dispatchers that predate `telemetry` ignore it. */
export type LambdaReply = Outcome & { telemetry?: InvocationTelemetry };

export const MAX_REPORTED_WAITS = 200;

const telemetrySchema = z.object({
  api: z.array(z.object({ verb: z.enum(API_VERBS), code: z.enum(API_CODE_CLASSES), count: z.number().int().min(1) })).max(100),
  budgetWaitMs: z.array(z.number().min(0)).max(MAX_REPORTED_WAITS),
  panicked: z.boolean(),
});

/** The telemetry of a reply, or undefined when it has none or it is malformed (the outcome stands either way). */
export function telemetryOf(reply: unknown): InvocationTelemetry | undefined {
  const parsed = telemetrySchema.safeParse((reply as { telemetry?: unknown } | null)?.telemetry);
  return parsed.success ? parsed.data : undefined;
}

/** Collects one invocation's telemetry as its requests happen. */
export class TelemetryRecorder {
  private readonly counts = new Map<string, { verb: ApiVerb; code: ApiCodeClass; count: number }>();
  private readonly waits: number[] = [];
  private crashed = false;

  request(verb: ApiVerb, code: ApiCodeClass, waitedMs: number): void {
    const id = `${verb} ${code}`;
    const entry = this.counts.get(id);
    if (entry === undefined) this.counts.set(id, { verb, code, count: 1 });
    else entry.count += 1;
    if (this.waits.length < MAX_REPORTED_WAITS) this.waits.push(Math.max(0, waitedMs));
  }

  panicked(): void {
    this.crashed = true;
  }

  toJSON(): InvocationTelemetry {
    return { api: [...this.counts.values()], budgetWaitMs: this.waits, panicked: this.crashed };
  }
}
