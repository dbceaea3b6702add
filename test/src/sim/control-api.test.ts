import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type KubeSimulator, startKubeSimulator } from './simulator.ts';

// The control API is the simulator's own (not Kubernetes'), so plain fetch is the client a user would use.
describe('Kubernetes API simulator: HTTP control API under /_sim', () => {
  let sim: KubeSimulator;
  const call = (method: string, path: string, body?: unknown, token = sim.token) =>
    fetch(`${sim.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  before(async () => {
    sim = await startKubeSimulator();
  });
  after(async () => {
    await sim.close();
  });

  it('requires the bearer token', async () => {
    const response = await call('GET', '/_sim/faults', undefined, 'wrong');
    assert.equal(response.status, 401);
  });

  it('switches faults at run time: a 429 with Retry-After for one verb, then reset', async () => {
    const set = await call('PATCH', '/_sim/faults', { throttle: { verbs: ['list'], retryAfterSeconds: 4 } });
    assert.equal(set.status, 200);
    assert.deepEqual(((await set.json()) as { throttle: unknown }).throttle, { verbs: ['list'], retryAfterSeconds: 4 });
    const listed = await call('GET', '/api/v1/namespaces/default/configmaps');
    assert.equal(listed.status, 429);
    assert.equal(listed.headers.get('retry-after'), '4');
    assert.equal(((await listed.json()) as { reason: string }).reason, 'TooManyRequests');
    assert.equal((await call('GET', '/api/v1/namespaces/default')).status, 200, 'get is not throttled');
    await call('POST', '/_sim/faults/reset');
    assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps')).status, 200);
  });

  it('rejects an unknown or malformed fault setting with 400 naming it, changing nothing', async () => {
    const unknown = await call('PATCH', '/_sim/faults', { latency: 5 });
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { message: string }).message, /unknown fault setting "latency"/);
    const bad = await call('PATCH', '/_sim/faults', { throttle: { share: 2 } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /throttle.share/);
    assert.deepEqual(sim.faults.get().throttle, null);
  });

  it('reads and resets the request counters', async () => {
    await call('POST', '/_sim/counters/reset');
    await call('GET', '/api/v1/namespaces/default/configmaps/nope');
    const counters = (await (await call('GET', '/_sim/counters')).json()) as {
      total: number;
      entries: Array<{ verb: string; resource: string; code: number }>;
    };
    assert.equal(counters.total, 1);
    assert.deepEqual(counters.entries[0], { verb: 'get', resource: 'configmaps', code: 404, count: 1 });
  });

  it('logs list and watch requests with their Accept header and paging, and resets the log', async () => {
    await call('POST', '/_sim/requests/reset');
    const accept = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
    const first = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps?limit=2`, {
      headers: { authorization: `Bearer ${sim.token}`, accept },
    });
    assert.equal(first.status, 200);
    await call('GET', '/api/v1/namespaces/default/configmaps/nope');
    sim.faults.expireNextWatch();
    const expired = await fetch(`${sim.url}/api/v1/configmaps?watch=true&resourceVersion=1`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    assert.equal(expired.status, 200);
    assert.match(await expired.text(), /"code":410/);
    const log = (await (await call('GET', '/_sim/requests')).json()) as {
      requests: Array<{ verb: string; path: string; accept: string; limit?: number; continued: boolean; code: number; expired: boolean }>;
      dropped: number;
    };
    assert.equal(log.dropped, 0);
    assert.deepEqual(
      log.requests.map((r) => [r.verb, r.path, r.accept, r.limit, r.continued, r.code, r.expired]),
      [
        ['list', '/api/v1/namespaces/default/configmaps', accept, 2, false, 200, false],
        ['watch', '/api/v1/configmaps', '*/*', undefined, false, 200, true],
      ],
      'a get is not logged; lists and watches are, in order',
    );
    await call('POST', '/_sim/requests/reset');
    assert.deepEqual(((await (await call('GET', '/_sim/requests')).json()) as { requests: unknown[] }).requests, []);
  });

  it('closes open watches and reports stats', async () => {
    const controller = new AbortController();
    const watch = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps?watch=true`, {
      headers: { authorization: `Bearer ${sim.token}` },
      signal: controller.signal,
    });
    assert.equal(watch.status, 200);
    const stats = (await (await call('GET', '/_sim/stats')).json()) as { openWatches: number; memory: { rss: number } };
    assert.equal(stats.openWatches, 1);
    assert.ok(stats.memory.rss > 0);
    assert.deepEqual(await (await call('POST', '/_sim/watches/close')).json(), { closed: 1 });
    assert.equal(await watch.text(), '', 'the stream ends cleanly');
  });
});
