import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ScaleTarget, SharedScaleTarget } from './scale-targets.ts';

/** A Deployment's replicas as the scale subresource would hold them, with every write recorded. */
function deployment(replicas: number): ScaleTarget & { writes: number[] } {
  const writes: number[] = [];
  return {
    writes,
    current: async () => replicas,
    apply: async (n) => {
      replicas = n;
      writes.push(n);
    },
    describe: () => 'deployment conveyor-system/conveyor-worker',
  };
}

describe('Class: SharedScaleTarget (one worker Deployment sized by several controllers’ autoscalers)', () => {
  it('runs the most any controller wants, and a smaller want of one never undercuts another’s', async () => {
    const inner = deployment(3);
    const shared = new SharedScaleTarget(inner);
    const widgets = shared.forController('widgets');
    const gadgets = shared.forController('gadgets');
    assert.equal(await widgets.current(), -1, 'unknown until it asked, so its first decision is always applied');
    await widgets.apply(5);
    await gadgets.apply(1);
    assert.deepEqual(inner.writes, [5]);
    assert.equal(await gadgets.current(), 1, 'each controller sees what it asked for');
    await widgets.apply(0);
    assert.deepEqual(inner.writes, [5, 1]);
    await gadgets.apply(0);
    assert.deepEqual(inner.writes, [5, 1, 0]);
  });

  it('forgets a want whose write failed, so the controller asks again next interval', async () => {
    const inner = deployment(1);
    let fail = true;
    const flaky: ScaleTarget = { ...inner, apply: async (n) => (fail ? Promise.reject(new Error('409')) : inner.apply(n)) };
    const widgets = new SharedScaleTarget(flaky).forController('widgets');
    await assert.rejects(widgets.apply(4));
    assert.equal(await widgets.current(), -1);
    fail = false;
    await widgets.apply(4);
    assert.deepEqual(inner.writes, [4]);
  });
});
