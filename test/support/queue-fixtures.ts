// Fixtures for queue tests: settings for a fresh queue on a private Redis, object keys, and polling for a condition.
import { randomUUID } from 'node:crypto';
import {
  type ConfigInput,
  configSchema,
  type ObjectKey,
  type Outcome,
  type QueueSettings,
  type QueueWorker,
  ReconcileQueue,
  type RequestContext,
  startQueueWorker,
} from '@conveyor/shared';

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

/** A queue and one worker on it (started by `start`) that records every reconcile it runs, torn down by `close`. */
export function queueHarness(
  settings: QueueSettings,
  processor: (request: RequestContext, runs: RequestContext[]) => Promise<Outcome>,
  concurrency = 2,
) {
  const queue = new ReconcileQueue(settings);
  const runs: RequestContext[] = [];
  let worker: QueueWorker | undefined;
  return {
    queue,
    runs,
    names: () => runs.map((r) => r.key.name),
    start() {
      worker = startQueueWorker({
        ...settings,
        concurrency,
        processor: async (request) => {
          runs.push(request);
          return await processor(request, runs);
        },
      });
    },
    async close() {
      await worker?.close(1_000);
      await queue.close();
    },
  };
}
