// The request a Lambda invocation carries (identity only, well under 1 KB), encoded by the dispatcher and checked by the handler.
import { formatKey, type ObjectKey, parseKey } from '@conveyor/shared';
import { z } from 'zod';

export const lambdaRequestSchema = z.strictObject({
  v: z.literal(1),
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
  const { key, reason, enqueuedAt, attempt, trace, fence } = parsed.data;
  return {
    key: parseKey(key),
    reason,
    enqueuedAt,
    attempt,
    ...(trace === undefined ? {} : { trace }),
    ...(fence === undefined ? {} : { jobId: fence.jobId, lockToken: fence.token }),
  };
}
