// End to end through AWS Lambda emulation: simulator + private Redis + `startDispatcher` + the Widget
// function under serverless-offline, with a fault proxy in between for throttling; and one trace from a
// watch event into the function's API calls (this process's spans in memory, the function's over OTLP).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { type Config, createLogger, formatKey, keyOf, type ObjectKey, OwnWriteLookup, ownWriteId, SPAN } from '@conveyor/shared';
import { LambdaEmulator } from '@conveyor/test/support/lambda-emulator';
import { LambdaFaultProxy } from '@conveyor/test/support/lambda-fault-proxy';
import { OtlpReceiver, type ReceivedSpan } from '@conveyor/test/support/otlp-receiver';
import { runWatcher } from '@conveyor/watcher/run-watcher';
import { type Dispatcher, startDispatcher } from '@conveyor/workers/lambda/dispatcher';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Redis } from 'ioredis';
import widgets, { type Widget } from '../../examples/widgets/controller.ts';
import { ExampleRecords } from '../../examples/widgets/example-records.ts';
import { CONFIGMAPS, startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

// This process (watcher, dispatcher) records its spans in memory; the function exports its own to an OTLP receiver.
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
contextManager.enable();
context.setGlobalContextManager(contextManager);
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));

const WIDGET_COUNT = 200;
const DELETE_COUNT = 50;

async function converged(world: WidgetWorld, keys: readonly ObjectKey[]): Promise<number> {
  const list = await world.client.list<Widget>(WIDGETS, 'default');
  const wanted = new Set(keys.map(formatKey));
  return list.items.filter((w) => wanted.has(formatKey(keyOf(WIDGETS, w))) && w.status?.observedGeneration === w.metadata.generation)
    .length;
}

async function invocations(dispatcher: Dispatcher, result: string): Promise<number> {
  const metric = await dispatcher.registry.getSingleMetric('conveyor_lambda_invocations_total')?.get();
  return (metric?.values ?? []).filter((v) => v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
}

const emptyQueue = (world: WidgetWorld) => async () => {
  const d = await world.queue.getDepth();
  return d.waiting + d.prioritized + d.active + d.delayedDue + d.delayedLater === 0;
};

describe('End to end: Widgets reconciled through Lambda (serverless-offline)', () => {
  let world: WidgetWorld;
  let emulator: LambdaEmulator;
  let proxy: LambdaFaultProxy;
  let redis: Redis;
  let receiver: OtlpReceiver;

  before(async () => {
    receiver = await OtlpReceiver.start();
    world = await startWidgetWorld({
      queue: { lockDuration: '20s', stalledInterval: '5s', attempts: 8, backoff: { base: '100ms', max: '1s', jitter: 0 } },
      // Each concurrent slot is a cold start in the emulator (a worker thread loading the bundle), as in Lambda.
      worker: { concurrency: 6 },
      apiBudget: { qps: 100_000, burst: 1_000 },
    });
    emulator = await LambdaEmulator.start('serverless.e2e.yml', {
      CONVEYOR_REDIS__URL: world.config.redis.url,
      CONVEYOR_REDIS__PREFIX: world.config.redis.prefix,
      CONVEYOR_KUBE__SERVER: world.sim.url,
      CONVEYOR_KUBE__TOKEN: world.sim.token,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    });
    proxy = await LambdaFaultProxy.start(emulator.endpoint);
    redis = new Redis(world.redis.url);
  });
  after(async () => {
    redis?.disconnect();
    await proxy?.close();
    await emulator?.stop();
    await world?.close();
    await receiver?.close();
  });

  const dispatch = (functionName: string, functionTimeout = '30s'): Promise<Dispatcher> => {
    const config: Config = {
      ...world.config,
      lambda: { ...world.config.lambda, endpoint: proxy.endpoint, functionTimeout: Number.parseInt(functionTimeout, 10) * 1_000 },
    };
    // The emulator accepts any credentials; retries belong to the queue, so the SDK makes one attempt.
    const lambda = new LambdaClient({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    return startDispatcher({ controller: 'widgets', functionName, config, lambda, logger: createLogger({ level: 'silent' }) });
  };

  it('carries one trace from a watch event through the queue and the dispatcher into the function’s reconcile and API calls', async () => {
    const watcher = await runWatcher({
      controller: widgets,
      config: world.config,
      logger: createLogger({ level: 'silent' }),
      kubeConfig: world.sim.kubeConfig(),
    });
    const dispatcher = await dispatch('conveyor-e2e-dev-reconcile');
    try {
      await watcher.ready;
      const created = await world.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'traced', namespace: 'default' },
        spec: { color: 'green' },
      });
      const key = keyOf(WIDGETS, created);
      await waitFor('the Widget reconciled in Lambda', async () => (await converged(world, [key])) === 1, 60_000, 100);
      const event = exporter
        .getFinishedSpans()
        .find(
          (s) =>
            s.name === SPAN.watchEvent &&
            s.attributes['conveyor.key'] === formatKey(key) &&
            s.attributes['conveyor.watch.event_type'] === 'ADDED',
        );
      assert.ok(event !== undefined, 'the watcher traced the ADDED event');
      const traceId = event.spanContext().traceId;
      const inTrace = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      // The status lands before the function's answer reaches the dispatcher, which ends its spans after it.
      await waitFor('the dispatcher’s spans', () => inTrace().some((s) => s.name === SPAN.request), 30_000, 50);
      const here = inTrace();
      const under = (name: string, parentId: string) =>
        here.find((s) => s.name === name && s.parentSpanContext?.spanId === parentId) ??
        assert.fail(`no ${name} under ${parentId} in ${here.map((s) => s.name).join(', ')}`);
      const eventId = event.spanContext().spanId;
      assert.ok(under(SPAN.queueWait, eventId));
      const request = under(SPAN.request, eventId);
      const invoke = under(SPAN.lambdaInvoke, request.spanContext().spanId);
      const fromFunction = () => receiver.spans.filter((s) => s.traceId === traceId);
      await waitFor('the function’s spans', () => fromFunction().some((s) => s.name === SPAN.reconcile), 30_000, 100);
      const spans = fromFunction();
      const child = (name: string, parent: ReceivedSpan | string): ReceivedSpan =>
        spans.find((s) => s.name === name && s.parentSpanId === (typeof parent === 'string' ? parent : parent.spanId)) ??
        assert.fail(`no ${name} from the function; it sent ${spans.map((s) => `${s.name}<-${s.parentSpanId}`).join(', ')}`);
      const reconcile = child(SPAN.reconcile, invoke.spanContext().spanId);
      assert.equal(reconcile.service, 'conveyor-lambda');
      assert.equal(child('kube get widgets', reconcile).attributes['http.response.status_code'], 200);
      assert.equal(child('kube apply configmaps', reconcile).attributes['conveyor.api.verb'], 'apply');
      child('kube apply widgets/status', child(SPAN.statusWrite, reconcile));
      // Gone again through its finalizer, so the next test counts only its own Widgets, children and records.
      await world.client.delete(key);
      await waitFor('the Widget deleted', async () => (await world.client.find(key)) === undefined, 30_000, 100);
    } finally {
      // What the watcher enqueued after (the child ConfigMap's event) runs here, not in the next test's dispatcher.
      await watcher.close();
      await waitFor('an empty queue', emptyQueue(world), 30_000).catch(() => undefined);
      await dispatcher.close(2_000);
    }
  });

  it(`reconciles ${WIDGET_COUNT} Widgets with one invocation each, then cleans up ${DELETE_COUNT} deletes through finalize`, async () => {
    const dispatcher = await dispatch('conveyor-e2e-dev-reconcile');
    try {
      const keys = await world.createWidgets(WIDGET_COUNT);
      await world.enqueue(keys);
      await waitFor('every Widget reconciled', async () => (await converged(world, keys)) === WIDGET_COUNT, 120_000, 250);
      await waitFor('an empty queue', emptyQueue(world), 10_000);
      assert.equal(await invocations(dispatcher, 'ok'), WIDGET_COUNT, 'one invocation per reconcile');
      const children = await world.client.list(CONFIGMAPS, 'default');
      assert.equal(children.items.filter((cm) => cm.metadata.name.endsWith('-widget')).length, WIDGET_COUNT);
      const records = new ExampleRecords(redis, world.config.redis.prefix);
      assert.equal(await records.count(), WIDGET_COUNT);
      // The function's writes are recorded as the controller's own, so a watcher would drop their events.
      const lookup = new OwnWriteLookup(redis, { prefix: world.config.redis.prefix, controller: 'widgets' });
      const widget = await world.client.get(keys[0] as ObjectKey);
      const child = await world.client.get({ ...CONFIGMAPS, namespace: 'default', name: `${widget.metadata.name}-widget` });
      const verdicts = await lookup.check(
        [widget, child].map((o, i) => ({
          id: ownWriteId({
            group: i === 0 ? 'example.com' : '',
            plural: i === 0 ? 'widgets' : 'configmaps',
            namespace: 'default',
            name: o.metadata.name,
          }),
          resourceVersion: o.metadata.resourceVersion,
        })),
      );
      assert.deepEqual(verdicts, ['own', 'own'], 'the status apply and the child apply made in the function');

      const doomed = keys.slice(0, DELETE_COUNT);
      for (const key of doomed) await world.client.delete(key);
      await world.enqueue(doomed);
      await waitFor(
        'deleted Widgets gone',
        async () => (await world.client.list(WIDGETS, 'default')).items.length === WIDGET_COUNT - DELETE_COUNT,
        60_000,
        250,
      );
      assert.equal(await records.count(), WIDGET_COUNT - DELETE_COUNT, 'finalize removed the external records');
      assert.equal((await world.queue.getDepth()).parked, 0);
    } finally {
      await dispatcher.close(2_000);
    }
  });

  it('retries a function that throws, and one that times out, until they succeed; the emulator keeps serving', async () => {
    const dispatcher = await dispatch('conveyor-e2e-dev-flaky', '5s');
    try {
      const thrower = await world.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'throw-1', namespace: 'default' },
        spec: { color: 'red' },
      });
      const sleeper = await world.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'slow-1', namespace: 'default' },
        spec: { color: 'red' },
      });
      const keys = [keyOf(WIDGETS, thrower), keyOf(WIDGETS, sleeper)];
      await world.enqueue(keys);
      await waitFor('both converged', async () => (await converged(world, keys)) === 2, 60_000, 250);
      // The status lands before the function's answer reaches the dispatcher (it still records its own writes).
      await waitFor('both answered', async () => (await invocations(dispatcher, 'ok')) >= 2, 10_000, 50);
      assert.ok((await invocations(dispatcher, 'function-error')) >= 3, 'two throws and one timeout came back as FunctionError');
      assert.equal(await invocations(dispatcher, 'ok'), 2);
      // After a timed-out invocation the emulator still answers.
      const later = await world.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'after-timeout', namespace: 'default' },
        spec: { color: 'blue' },
      });
      const fresh = keyOf(WIDGETS, later);
      await world.enqueue([fresh]);
      await waitFor('a later Widget converged', async () => (await converged(world, [fresh])) === 1, 30_000, 250);
      assert.equal((await world.queue.getDepth()).parked, 0);
    } finally {
      await dispatcher.close(2_000);
    }
  });

  it('pauses the queue while the proxy answers TooManyRequestsException, and loses nothing', async () => {
    const dispatcher = await dispatch('conveyor-e2e-dev-reconcile');
    try {
      const created = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          world.client.create<Widget>(WIDGETS, {
            apiVersion: 'example.com/v1',
            kind: 'Widget',
            metadata: { name: `t-${i}`, namespace: 'default' },
            spec: { size: i },
          }),
        ),
      );
      const keys = created.map((w) => keyOf(WIDGETS, w));
      proxy.throttleFor(2_500);
      await world.enqueue(keys);
      await waitFor('every throttled Widget reconciled', async () => (await converged(world, keys)) === keys.length, 60_000, 250);
      assert.ok(proxy.throttled >= 1, 'the proxy throttled some invocations');
      assert.ok(proxy.throttled <= 40, `a queue-wide pause, not a retry storm: ${proxy.throttled} throttled calls`);
      assert.equal(await invocations(dispatcher, 'throttled'), proxy.throttled);
      assert.equal((await world.queue.getDepth()).parked, 0);
    } finally {
      await dispatcher.close(2_000);
    }
  });
});
