// Public surface of the reconcile queue protocol.
export { type QueueWorker, type RequestContext, startQueueWorker } from './queue-worker.ts';
export { type Depth, keyOfJobId, type QueueSettings, ReconcileQueue } from './reconcile-queue.ts';
export {
  closeRedisConnection,
  createRedisConnection,
  type RedisConnection,
  redisEndpoint,
  waitForRedis,
} from './redis-connection.ts';
export { type EnqueueRequest, encodeRequest, type RequestReason } from './request-payload.ts';
