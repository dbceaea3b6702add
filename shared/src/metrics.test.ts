import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetricsRegistry, METRIC, RECONCILE_RESULTS, reconcileMetrics } from './metrics.ts';

describe('Function: reconcileMetrics', () => {
  it('exposes every result series at 0 under controller-runtime’s names before anything ran', async () => {
    const registry = createMetricsRegistry();
    reconcileMetrics(registry, 'widgets');
    const text = await registry.metrics();
    for (const result of RECONCILE_RESULTS) {
      assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="${result}"} 0`), `missing ${result} at 0`);
    }
    assert.ok(text.includes(`${METRIC.reconcileErrorsTotal}{controller="widgets"} 0`));
    assert.ok(text.includes(`${METRIC.reconcileTimeSeconds}_count{controller="widgets"} 0`));
    assert.ok(text.includes(`${METRIC.workqueueRetriesTotal}{name="widgets"} 0`));
  });

  it('counts outcomes the way controller-runtime labels them', async () => {
    const registry = createMetricsRegistry();
    const metrics = reconcileMetrics(registry, 'widgets');
    const run = { runSeconds: 0.01, queuedSeconds: 0.001 };
    metrics.observe({ ...run, outcome: { kind: 'done' }, attempt: 1, requeued: false, sinceEventSeconds: 0.5 });
    metrics.observe({ ...run, outcome: { kind: 'requeueAfter', delayMs: 1000 }, attempt: 1, requeued: true });
    metrics.observe({ ...run, outcome: { kind: 'terminal', code: 'TERMINAL', message: 'x' }, attempt: 2, requeued: false });
    metrics.observe({ ...run, outcome: { kind: 'error', code: 'TypeError', message: 'x' }, attempt: 3, requeued: true, panicked: true });
    const text = await registry.metrics();
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="success"} 1`));
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="requeue_after"} 1`));
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="error"} 2`));
    assert.ok(text.includes(`${METRIC.reconcileErrorsTotal}{controller="widgets"} 2`));
    assert.ok(text.includes(`${METRIC.terminalReconcileErrorsTotal}{controller="widgets"} 1`));
    assert.ok(text.includes(`${METRIC.workqueueRetriesTotal}{name="widgets"} 2`));
    assert.ok(text.includes(`${METRIC.workqueueAddsTotal}{name="widgets"} 2`), 'a requeue-after and a retry are adds, as in client-go');
    assert.ok(text.includes(`${METRIC.reconcilePanicsTotal}{controller="widgets"} 1`));
    assert.ok(text.includes(`${METRIC.eventToReconcileStartSeconds}_count{controller="widgets"} 1`));
  });

  it('counts API requests by verb and code, every pair at 0 before the first', async () => {
    const registry = createMetricsRegistry();
    const metrics = reconcileMetrics(registry, 'widgets');
    metrics.apiRequest('get', '2xx', 0);
    metrics.apiRequests('apply', '409', 3);
    const text = await registry.metrics();
    assert.ok(text.includes(`${METRIC.apiRequestsTotal}{controller="widgets",verb="get",code="2xx"} 1`));
    assert.ok(text.includes(`${METRIC.apiRequestsTotal}{controller="widgets",verb="apply",code="409"} 3`));
    assert.ok(text.includes(`${METRIC.apiRequestsTotal}{controller="widgets",verb="watch",code="5xx"} 0`));
  });
});
