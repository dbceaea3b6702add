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
    metrics.observe({ kind: 'done' }, 0.01, 0.001, 1);
    metrics.observe({ kind: 'requeueAfter', delayMs: 1000 }, 0.01, 0.001, 1);
    metrics.observe({ kind: 'terminal', code: 'TERMINAL', message: 'x' }, 0.01, 0.001, 2);
    metrics.observe({ kind: 'error', code: 'E', message: 'x' }, 0.01, 0.001, 3);
    const text = await registry.metrics();
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="success"} 1`));
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="requeue_after"} 1`));
    assert.ok(text.includes(`${METRIC.reconcileTotal}{controller="widgets",result="error"} 2`));
    assert.ok(text.includes(`${METRIC.reconcileErrorsTotal}{controller="widgets"} 2`));
    assert.ok(text.includes(`${METRIC.terminalReconcileErrorsTotal}{controller="widgets"} 1`));
    assert.ok(text.includes(`${METRIC.workqueueRetriesTotal}{name="widgets"} 2`));
  });
});
