// Conformance, simulator only: fault injection, request counters and continue-token expiry under a controlled clock (skipped against a real server).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectStatus, openTarget, openWatch, SIMULATOR_ONLY, type Target } from './target.ts';

describe('Kubernetes API simulator: faults, counters, clock', { skip: SIMULATOR_ONLY }, () => {
  let target: Target;
  let skewMs = 0;
  const sim = () => {
    assert.ok(target.simulator);
    return target.simulator;
  };
  before(async () => {
    target = await openTarget({ now: () => Date.now() + skewMs, continueTokenTtlMs: 60_000 });
    for (let i = 0; i < 6; i++) {
      await target.core.createNamespacedConfigMap({
        namespace: target.namespace,
        body: { metadata: { name: `cm${i}` }, data: { i: String(i) } },
      });
    }
  });
  after(async () => {
    sim().faults.reset();
    await target.close();
  });

  it('expires a continue token after the configured window with 410 Expired', async () => {
    const first = await target.core.listNamespacedConfigMap({ namespace: target.namespace, limit: 2 });
    const token = first.metadata?._continue;
    assert.ok(token);
    const second = await target.core.listNamespacedConfigMap({ namespace: target.namespace, limit: 2, _continue: token });
    assert.equal(second.items.length, 2, 'a fresh token works');
    skewMs += 61_000;
    try {
      const status = await expectStatus(
        target.core.listNamespacedConfigMap({ namespace: target.namespace, limit: 2, _continue: token }),
        410,
        'Expired',
      );
      assert.match(status.message, /continue parameter is too old/);
    } finally {
      skewMs -= 61_000;
    }
  });

  it('counts requests by verb, resource and status code', async () => {
    sim().resetCounters();
    await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
    await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
    await expectStatus(target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'missing' }), 404, 'NotFound');
    await target.core.listNamespacedConfigMap({ namespace: target.namespace });
    const counters = sim().counters();
    const count = (verb: string, code: number) =>
      counters.entries.find((e) => e.verb === verb && e.resource === 'configmaps' && e.code === code)?.count;
    assert.equal(count('get', 200), 2);
    assert.equal(count('get', 404), 1);
    assert.equal(count('list', 200), 1);
    assert.equal(counters.total, 4);
    assert.equal(counters.byVerb.get, 3);
  });

  it('answers a share of one verb with 429 and Retry-After while other verbs pass', async () => {
    sim().faults.throttle({ verbs: ['list'], retryAfterSeconds: 7 });
    try {
      const status = await expectStatus(target.core.listNamespacedConfigMap({ namespace: target.namespace }), 429, 'TooManyRequests');
      assert.equal(status.details?.retryAfterSeconds, 7);
      await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
    } finally {
      sim().faults.reset();
    }
    await target.core.listNamespacedConfigMap({ namespace: target.namespace });
  });

  it('sends the Retry-After header with a 429', async () => {
    sim().faults.throttle({ count: 1, retryAfterSeconds: 3 });
    await assert.rejects(
      target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' }),
      (error: { code?: number; headers?: Record<string, string> }) => {
        assert.equal(error.code, 429);
        assert.equal(error.headers?.['retry-after'], '3');
        return true;
      },
    );
    await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
  });

  it('answers with 500 InternalError for the next requests when told to', async () => {
    sim().faults.serverErrors({ count: 2 });
    await expectStatus(target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' }), 500, 'InternalError');
    await expectStatus(target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' }), 500, 'InternalError');
    await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
  });

  it('adds latency, and holds requests while paused', async () => {
    sim().faults.latency(150);
    const started = Date.now();
    await target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' });
    assert.ok(Date.now() - started >= 140);
    sim().faults.reset();
    sim().faults.pause();
    let answered = false;
    const pending = target.core.readNamespacedConfigMap({ namespace: target.namespace, name: 'cm1' }).then(() => {
      answered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(answered, false, 'no answer while paused');
    sim().faults.resume();
    await pending;
    assert.equal(answered, true);
  });

  it('closes every open watch on demand, and answers the next watch with ERROR 410', async () => {
    const path = `/api/v1/namespaces/${target.namespace}/configmaps`;
    const rv = (await target.core.listNamespacedConfigMap({ namespace: target.namespace })).metadata?.resourceVersion ?? '';
    const watch = await openWatch(target.kc, path, { resourceVersion: rv });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(sim().faults.closeWatches(), 1);
    assert.equal(await watch.done, null);
    sim().faults.expireNextWatch();
    const expired = await openWatch(target.kc, path, { resourceVersion: rv });
    const event = await expired.next((e) => e.type === 'ERROR');
    assert.equal(event.object.code, 410);
    const healthy = await openWatch(target.kc, path, { resourceVersion: rv });
    await target.core.createNamespacedConfigMap({ namespace: target.namespace, body: { metadata: { name: 'after-expiry' } } });
    await healthy.next((e) => e.type === 'ADDED' && e.object.metadata?.name === 'after-expiry');
    healthy.stop();
  });

  it('forgets the event history on compaction: older resourceVersions get 410', async () => {
    const rv = (await target.core.listNamespacedConfigMap({ namespace: target.namespace })).metadata?.resourceVersion ?? '';
    await target.core.createNamespacedConfigMap({ namespace: target.namespace, body: { metadata: { name: 'before-compaction' } } });
    sim().faults.compactHistory();
    const watch = await openWatch(target.kc, `/api/v1/namespaces/${target.namespace}/configmaps`, { resourceVersion: rv });
    const event = await watch.next((e) => e.type === 'ERROR');
    assert.equal(event.object.code, 410);
    assert.equal(event.object.reason, 'Expired');
  });
});
