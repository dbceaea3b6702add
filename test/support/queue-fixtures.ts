// Fixtures for queue tests: settings for a fresh queue on a private Redis, object keys, and polling for a condition.
import { randomUUID } from 'node:crypto';
import { type ConfigInput, configSchema, type ObjectKey, type QueueSettings } from '@conveyor/shared';

export { waitFor } from './wait-for.ts';

/** Settings for a queue no other test uses, with short locks and fast backoff unless overridden. */
export function queueSettings(redisUrl: string, queue: NonNullable<ConfigInput['queue']> = {}): QueueSettings {
  const config = configSchema.parse({
    redis: { url: redisUrl },
    queue: { lockDuration: '2s', stalledInterval: '1s', attempts: 3, backoff: { base: '20ms', max: '200ms', jitter: 0 }, ...queue },
  });
  return { controller: `t-${randomUUID().slice(0, 8)}`, redis: config.redis, queue: config.queue };
}

export function widgetKey(name: string, namespace = 'default'): ObjectKey {
  return { group: 'example.com', version: 'v1', plural: 'widgets', namespace, name };
}

/** Polls `check` until it returns true; rejects with `what` after `timeoutMs`. */

/** A promise with its resolve function, for holding a reconcile open until a test releases it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
