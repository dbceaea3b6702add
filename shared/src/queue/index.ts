// Public surface of the reconcile queue protocol.
export { applyOutcome, checkOutcome, ReconcileFailedError } from './apply-outcome.ts';
export { type QueueWorker, type QueueWorkerOptions, type RequestContext, startQueueWorker } from './queue-worker.ts';
export {
  BACKOFF_STRATEGY,
  type Depth,
  keyOfJobId,
  type ParkedRequest,
  type QueueSettings,
  REASON_PRIORITY,
  ReconcileQueue,
} from './reconcile-queue.ts';
export { createRedisConnection, type RedisConnection } from './redis-connection.ts';
export { apiBudgetKey, type ControllerKeys, controllerKeys, type QueueLocation, queueLocation } from './redis-keys.ts';
export {
  type DecodedRequest,
  decodeRequest,
  type EnqueueRequest,
  encodeRequest,
  PAYLOAD_VERSION,
  REQUEST_REASONS,
  type RequestPayload,
  type RequestReason,
} from './request-payload.ts';
