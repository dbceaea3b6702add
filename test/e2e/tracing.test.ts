// One trace from a watch event on the simulator, through the watcher's buffer and the queue, into a container worker's reconcile
// and its API calls — and from a caller's traceparent through POST /v1/reconcile — recorded by the SDK's in-memory span exporter.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Config, createLogger, formatKey, keyOf, SPAN } from '@conveyor/shared';
import { hashToken } from '@conveyor/watcher/api/auth';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import widgets, { type Widget } from '../../examples/widgets/controller.ts';
import { startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
contextManager.enable();
context.setGlobalContextManager(contextManager);
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));

const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const traceOf = (span: ReadableSpan) => span.spanContext().traceId;
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const msOf = ([s, ns]: [number, number]) => s * 1_000 + ns / 1e6;

/** The spans of one trace, and the one named `name` whose parent is `parent` (failing with what the trace holds). */
function childOf(spans: readonly ReadableSpan[], name: string, parent: ReadableSpan): ReadableSpan {
  const found = spans.find((s) => s.name === name && parentOf(s) === idOf(parent));
  const shape = spans.map((s) => `${s.name} (parent ${spans.find((p) => idOf(p) === parentOf(s))?.name ?? parentOf(s) ?? '-'})`);
  assert.ok(found !== undefined, `no ${name} under ${parent.name}; the trace holds:\n  ${shape.join('\n  ')}`);
  return found;
}

describe('Tracing: one trace from the watch event to the reconcile’s API calls', () => {
  let world: WidgetWorld;
  let watcher: WatcherHandle | undefined;
  let worker: ContainerWorker | undefined;
  const token = 'trace-test-token';

  before(async () => {
    world = await startWidgetWorld();
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-tracing-'));
    const tokenFile = join(dir, 'tokens.yaml');
    writeFileSync(tokenFile, `tokens:\n  - user: ops\n    sha256: ${hashToken(token)}\n`);
    const config: Config = { ...world.config, api: { ...world.config.api, tokenFile } };
    const logger = createLogger({ level: 'silent' });
    const kubeConfig = world.sim.kubeConfig();
    watcher = await runWatcher({ controller: widgets, config, logger, kubeConfig });
    await watcher.ready;
    worker = await startContainerWorker({ controller: widgets, config, logger, kubeConfig, http: false });
  });
  after(async () => {
    await worker?.close(1_000);
    await watcher?.close();
    await world?.close();
  });

  it('follows a created Widget from its watch event across the queue into the worker’s reconcile, API calls and status write', async () => {
    exporter.reset();
    const created = await world.client.create<Widget>(WIDGETS, {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'traced', namespace: 'default' },
      spec: { color: 'blue', size: 1 },
    });
    const key = formatKey(keyOf(WIDGETS, created));
    const reconciles = () => exporter.getFinishedSpans().filter((s) => s.name === SPAN.reconcile && s.attributes['conveyor.key'] === key);
    await waitFor('a reconcile of the Widget', () => reconciles().length > 0, 30_000);

    const all = exporter.getFinishedSpans();
    // The ADDED event: the first reconcile's trace starts there.
    const event = all.find(
      (s) => s.name === SPAN.watchEvent && s.attributes['conveyor.key'] === key && s.attributes['conveyor.watch.event_type'] === 'ADDED',
    );
    assert.ok(event !== undefined, 'a span for the watch event');
    assert.equal(event.parentSpanContext, undefined, 'the watch event starts the trace');
    const spans = all.filter((s) => traceOf(s) === traceOf(event));

    const wait = childOf(spans, SPAN.queueWait, event);
    const request = childOf(spans, SPAN.request, event);
    assert.ok(msOf(wait.startTime) <= msOf(request.startTime), 'the queue wait comes before the run');
    assert.equal(typeof request.attributes['conveyor.queue.wait_ms'], 'number', 'and the run carries it too');
    const reconcile = childOf(spans, SPAN.reconcile, request);
    assert.equal(reconcile.attributes['conveyor.outcome'], 'done');
    const get = childOf(spans, 'kube get widgets', reconcile);
    assert.equal(get.attributes['http.response.status_code'], 200);
    assert.equal(get.attributes['http.request.method'], 'GET');
    assert.equal(childOf(spans, 'kube apply configmaps', reconcile).attributes['conveyor.api.verb'], 'apply');
    const status = childOf(spans, SPAN.statusWrite, reconcile);
    assert.equal(childOf(spans, 'kube apply widgets/status', status).attributes['http.response.status_code'], 200);
    for (const span of spans) {
      for (const value of Object.values(span.attributes))
        assert.doesNotMatch(String(value), new RegExp(world.sim.token), 'no token in a span');
    }
  });

  it('continues the caller’s traceparent through POST /v1/reconcile into the reconcile', async () => {
    exporter.reset();
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const response = await fetch(`${watcher?.url}/v1/reconcile`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        traceparent: `00-${callerTrace}-${callerSpan}-01`,
      },
      body: JSON.stringify({ namespace: 'default', name: 'traced' }),
    });
    assert.equal(response.status, 202, await response.text());
    const inCallerTrace = () => exporter.getFinishedSpans().filter((s) => traceOf(s) === callerTrace);
    await waitFor('the reconcile in the caller’s trace', () => inCallerTrace().some((s) => s.name === SPAN.reconcile), 30_000);
    const spans = inCallerTrace();
    const api = spans.find((s) => s.name === SPAN.manualReconcile);
    assert.ok(api !== undefined, 'a span for the API call');
    assert.equal(parentOf(api), callerSpan);
    assert.equal(api.attributes['http.response.status_code'], 202);
    const request = childOf(spans, SPAN.request, api);
    assert.equal(request.attributes['conveyor.reason'], 'manual');
    childOf(spans, SPAN.reconcile, request);
  });
});
