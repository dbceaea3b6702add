// The dispatcher on a real Redis queue, invoking a local server that speaks Lambda's Invoke API.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configSchema, formatKey, publishDesiredWorkers, ReconcileQueue } from '@conveyor/shared';
import { FakeLambda } from '@conveyor/test/support/fake-lambda';
import { queueSettings, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { Redis } from 'ioredis';
import { startDispatcher } from './dispatcher.ts';
import type { LambdaRequest } from './lambda-request.ts';

let server: RedisServer;
let lambda: FakeLambda;

before(async () => {
  server = await RedisServer.start();
  lambda = await FakeLambda.start(() => ({ kind: 'result', body: { kind: 'done' } }));
});
after(async () => {
  await lambda.close();
  await server.close();
});

async function setup(queue: Record<string, unknown> = {}) {
  const settings = queueSettings(server.url, queue);
  const config = configSchema.parse({
    redis: { url: server.url },
    queue: { lockDuration: '2s', stalledInterval: '1s', attempts: 5, backoff: { base: '20ms', max: '100ms', jitter: 0 }, ...queue },
    worker: { concurrency: 4 },
    lambda: { functionTimeout: '2s' },
  });
  const dispatcher = await startDispatcher({
    controller: settings.controller,
    functionName: 'reconcile',
    config,
    lambda: lambda.client(),
    followIntervalMs: 100,
  });
  const queueHandle = new ReconcileQueue(settings);
  return { settings, config, dispatcher, queue: queueHandle };
}

const invokedKeys = () => lambda.invocations.map((i) => (i.payload as LambdaRequest).key);

describe('Lambda dispatcher', () => {
  it('invokes the function once per request and completes each job with its outcome', async () => {
    lambda.invocations.length = 0;
    lambda.answerWith(() => ({ kind: 'result', body: { kind: 'done' } }));
    const { dispatcher, queue } = await setup();
    const keys = Array.from({ length: 40 }, (_, i) => widgetKey(`w-${i}`));
    await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
    await waitFor('40 invocations', () => lambda.invocations.length >= 40);
    await waitFor('an empty queue', async () => {
      const d = await queue.getDepth();
      return d.waiting + d.prioritized + d.active + d.delayedDue + d.delayedLater === 0;
    });
    assert.deepEqual(invokedKeys().sort(), keys.map(formatKey).sort());
    assert.equal((await queue.getDepth()).parked, 0);
    const metrics = await dispatcher.registry.metrics();
    assert.match(metrics, /conveyor_lambda_invocations_total\{controller="[^"]+",function="reconcile",result="ok"\} 40/);
    assert.match(metrics, /controller_runtime_reconcile_total\{controller="[^"]+",result="success"\} 40/);
    await dispatcher.close(1_000);
    await queue.close();
  });

  it('exports the API requests, budget waits and panics a function reports with its outcome, as a container worker would', async () => {
    lambda.invocations.length = 0;
    const telemetry = {
      api: [
        { verb: 'get', code: '2xx', count: 1 },
        { verb: 'apply', code: '409', count: 2 },
      ],
      budgetWaitMs: [0, 5, 250],
      panicked: true,
    };
    lambda.answerWith(() => ({ kind: 'result', body: { kind: 'error', code: 'TypeError', message: 'x is undefined', telemetry } }));
    const { dispatcher, queue } = await setup({ attempts: 1 });
    await queue.enqueue({ key: widgetKey('reporting'), reason: 'event' });
    await waitFor('parked', async () => (await queue.getDepth()).parked === 1);
    const metrics = await dispatcher.registry.metrics();
    assert.match(metrics, /conveyor_api_requests_total\{controller="[^"]+",verb="get",code="2xx"\} 1$/m);
    assert.match(metrics, /conveyor_api_requests_total\{controller="[^"]+",verb="apply",code="409"\} 2$/m);
    assert.match(metrics, /conveyor_api_budget_wait_seconds_count\{controller="[^"]+"\} 3$/m);
    assert.match(metrics, /controller_runtime_reconcile_panics_total\{controller="[^"]+"\} 1$/m);
    assert.match(metrics, /^workqueue_depth\{name="[^"]+"\} 0$/m, 'the dispatcher exports the queue depth too');
    await dispatcher.close(1_000);
    await queue.close();
  });

  it('retries a function that throws with backoff until it succeeds', async () => {
    lambda.invocations.length = 0;
    const failures = new Map<string, number>();
    lambda.answerWith((payload) => {
      const key = (payload as LambdaRequest).key;
      const n = failures.get(key) ?? 0;
      failures.set(key, n + 1);
      return n < 2 ? { kind: 'function-error', message: 'flaky downstream' } : { kind: 'result', body: { kind: 'done' } };
    });
    const { dispatcher, queue } = await setup();
    await queue.enqueueBatch([widgetKey('a'), widgetKey('b')].map((key) => ({ key, reason: 'event' as const })));
    await waitFor('both keys succeeded on their third attempt', () => lambda.invocations.length >= 6);
    await waitFor('an empty queue', async () => (await queue.getDepth()).delayedLater + (await queue.getDepth()).active === 0);
    const attempts = lambda.invocations.map((i) => (i.payload as LambdaRequest).attempt).sort();
    assert.deepEqual(attempts, [1, 1, 2, 2, 3, 3]);
    assert.equal((await queue.getDepth()).parked, 0);
    await dispatcher.close(1_000);
    await queue.close();
  });

  it('pauses the whole queue on TooManyRequestsException and loses nothing', async () => {
    lambda.invocations.length = 0;
    let throttledUntil = Date.now() + 1_500;
    const throttledCalls: number[] = [];
    lambda.answerWith(() => {
      if (Date.now() < throttledUntil) {
        throttledCalls.push(Date.now());
        return { kind: 'throttle', retryAfterSeconds: 1 };
      }
      return { kind: 'result', body: { kind: 'done' } };
    });
    const { dispatcher, queue } = await setup();
    const keys = Array.from({ length: 20 }, (_, i) => widgetKey(`t-${i}`));
    throttledUntil = Date.now() + 1_500;
    await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
    await waitFor('every key reconciled after the throttle', () => lambda.invocations.length - throttledCalls.length >= 20, 20_000);
    const succeeded = lambda.invocations.slice(-20).map((i) => (i.payload as LambdaRequest).key);
    assert.deepEqual(succeeded.sort(), keys.map(formatKey).sort(), 'each key succeeds exactly once');
    // A queue-wide pause: throttled calls are a handful, not one per key per retry storm.
    assert.ok(throttledCalls.length <= 8, `expected the queue to pause, saw ${throttledCalls.length} throttled calls`);
    // Throttling used no attempt: every successful call is attempt 1.
    const successes = lambda.invocations.slice(-20).map((i) => (i.payload as LambdaRequest).attempt);
    assert.ok(
      successes.every((a) => a === 1),
      `attempts ${successes}`,
    );
    assert.equal((await queue.getDepth()).parked, 0);
    await dispatcher.close(1_000);
    await queue.close();
  });

  const setupMistakes: [string, number, string, string][] = [
    ['a function that does not exist', 404, 'ResourceNotFoundException', 'LAMBDA_FUNCTION_NOT_FOUND'],
    ['access denied', 403, 'AccessDeniedException', 'LAMBDA_ACCESS_DENIED'],
  ];
  for (const [what, status, type, code] of setupMistakes) {
    it(`pauses the whole queue for ${what}, spending no attempts, and runs everything once it is fixed`, async () => {
      lambda.invocations.length = 0;
      let fixed = false;
      lambda.answerWith(() => (fixed ? { kind: 'result', body: { kind: 'done' } } : { kind: 'aws-error', status, type, message: 'no' }));
      // Two attempts: had the refusals spent them, every request would be parked after two tries.
      const { dispatcher, queue } = await setup({ attempts: 2, blockedPause: '300ms' });
      try {
        const keys = ['a', 'b', 'c'].map((name) => widgetKey(name));
        await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'event' as const })));
        await waitFor(`the queue paused for ${code}`, async () => (await queue.getBlocked())?.code === code, 20_000);
        // Four tries of three requests: one of them tried twice, all its attempts had they been spent.
        await waitFor('more refused tries than one request has attempts', () => lambda.invocations.length >= 4, 20_000);
        const depth = await queue.getDepth();
        assert.equal(depth.parked, 0, 'nothing parked');
        assert.equal(depth.waiting + depth.prioritized + depth.active, 3, 'every request still queued');
        assert.match(await dispatcher.registry.metrics(), /conveyor_queue_blocked\{controller="[^"]+"\} 1$/m);

        fixed = true;
        const refused = lambda.invocations.length;
        await waitFor('every request reconciled once fixed', async () => {
          const d = await queue.getDepth();
          return d.waiting + d.prioritized + d.active + d.delayedDue + d.delayedLater === 0;
        });
        const succeeded = lambda.invocations.slice(refused).map((i) => i.payload as LambdaRequest);
        assert.deepEqual(succeeded.map((r) => r.key).sort(), keys.map(formatKey).sort());
        assert.deepEqual(
          succeeded.map((r) => r.attempt),
          [1, 1, 1],
          'the refused tries used no attempt',
        );
        assert.equal((await queue.getDepth()).parked, 0);
      } finally {
        await dispatcher.close(1_000);
        await queue.close();
      }
    });
  }

  it('follows the concurrency the autoscaler publishes', async () => {
    const { dispatcher, queue, config, settings } = await setup();
    assert.equal(dispatcher.concurrency, 4);
    const redis = new Redis(server.url);
    await publishDesiredWorkers(redis, config.redis, settings.controller, 9, 10_000);
    await waitFor('concurrency 9', () => dispatcher.concurrency === 9, 5_000);
    await publishDesiredWorkers(redis, config.redis, settings.controller, 0, 10_000);
    await waitFor('one slot kept at zero', () => dispatcher.concurrency === 1, 5_000);
    redis.disconnect();
    await dispatcher.close(1_000);
    await queue.close();
  });
});
