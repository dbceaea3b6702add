// Sample of docs/operating.md's "When a dependency is away": a controller's own Redis connection, made with Conveyor's factory.
import { closeRedisConnection, createRedisConnection, defineController, type KubeObject, type RedisConnection } from 'kube-conveyor';

interface Counters {
  redis: RedisConnection;
  close(): Promise<void>;
}

// --- own-redis ---
export default defineController<KubeObject, Counters>({
  name: 'counted',
  for: { group: 'example.com', version: 'v1', plural: 'counteds', kind: 'Counted' },
  // Once per process: an outage is logged as Conveyor's own connections log it (one JSON line per
  // retry interval, password redacted), and closing does not wait on a Redis that is away.
  setup: ({ config, logger }) => {
    const redis = createRedisConnection(config.redis, { logger, purpose: 'reconcile counters' });
    return { redis, close: () => closeRedisConnection(redis) };
  },
  async reconcile(object, ctx) {
    await ctx.deps.redis.incr(`counted:${object.metadata.uid}`);
  },
});
// --- end own-redis ---
