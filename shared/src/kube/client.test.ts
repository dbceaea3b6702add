import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ApiBudget, applyKubeAuth, DISPATCHER_MAX_AGE_MS, outcomeFromError } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { ApiException, CoreV1Api, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { InvalidArgumentError } from '../errors.ts';
import { KubeApiClient } from './client.ts';
import { FieldConflictError, KubeApiError, normalizeKubeError } from './errors.ts';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
const NAMESPACES = { group: '', version: 'v1', plural: 'namespaces' };

/** A budget that counts what it hands out and records pauses. */
function countingBudget() {
  const state = { taken: 0, pauses: [] as number[] };
  const budget: ApiBudget = {
    take: async () => {
      state.taken += 1;
      return 0;
    },
    pause: async (ms) => {
      state.pauses.push(ms);
    },
  };
  return { budget, state };
}

describe('Class: KubeApiClient (against the simulator)', () => {
  let sim: KubeSimulator;
  before(async () => {
    sim = await startKubeSimulator();
    const setup = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: countingBudget().budget });
    if ((await setup.find({ ...NAMESPACES, namespace: '', name: 'default' })) === undefined) {
      await setup.create(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    }
  });
  after(async () => {
    await sim.close();
  });

  it('pays every call from the budget, its own and client-node’s typed APIs alike', async () => {
    const { budget, state } = countingBudget();
    const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget });
    await client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'paid', namespace: 'default' },
      data: { a: '1' },
    });
    const typed = await client.api(CoreV1Api).readNamespacedConfigMap({ name: 'paid', namespace: 'default' });
    assert.equal(typed.data?.a, '1');
    assert.equal(await client.find({ ...CONFIGMAPS, namespace: 'default', name: 'absent' }), undefined);
    assert.equal(state.taken, 3);
  });

  it('tells onRequest the Kubernetes verb and status class of each call, typed APIs included', async () => {
    const seen: string[] = [];
    const client = new KubeApiClient({
      kubeConfig: sim.kubeConfig(),
      onRequest: (verb, code) => seen.push(`${verb} ${code}`),
      fieldManager: 'verbs-test',
    });
    const key = { ...CONFIGMAPS, namespace: 'default', name: 'verbs' };
    await client.create(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'verbs', namespace: 'default' } });
    await client.get(key);
    await client.list(CONFIGMAPS, 'default');
    await client.patch(key, { type: 'merge', body: { data: { a: '1' } } });
    await client.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'verbs', namespace: 'default' }, data: { b: '2' } });
    await client.api(CoreV1Api).readNamespacedConfigMap({ name: 'verbs', namespace: 'default' });
    await client.delete(key);
    await client.find(key);
    // apply first reads API discovery (a get) to map the kind to its resource.
    const discovery = 'get 2xx';
    assert.deepEqual(seen, ['create 2xx', 'get 2xx', 'list 2xx', 'patch 2xx', discovery, 'apply 2xx', 'get 2xx', 'delete 2xx', 'get 404']);
  });

  it('refuses a write carrying a stale resourceVersion with a 409 conflict', async () => {
    const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: countingBudget().budget });
    const key = { ...CONFIGMAPS, namespace: 'default', name: 'raced' };
    const created = await client.create(CONFIGMAPS, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'raced', namespace: 'default' },
    });
    await client.patch(key, { type: 'merge', body: { data: { b: '1' } } });
    await assert.rejects(
      client.patch(key, { type: 'merge', body: { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { b: '2' } } }),
      (error: unknown) => error instanceof KubeApiError && error.statusCode === 409 && error.code === 'CONFLICT',
    );
  });

  it('turns a 429 into a throttled error and pauses the budget for its Retry-After', async () => {
    const { budget, state } = countingBudget();
    const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget });
    sim.faults.throttle({ count: 1, retryAfterSeconds: 2 });
    await assert.rejects(client.get({ ...CONFIGMAPS, namespace: 'default', name: 'paid' }), (error: unknown) => {
      assert.ok(error instanceof KubeApiError && error.statusCode === 429);
      assert.deepEqual(outcomeFromError(error), { kind: 'throttled', retryAfterMs: 2_000, message: error.message });
      return true;
    });
    sim.faults.throttle({ count: 1, retryAfterSeconds: 3 });
    await assert.rejects(client.api(CoreV1Api).readNamespacedConfigMap({ name: 'paid', namespace: 'default' }), (error: unknown) => {
      assert.ok(error instanceof ApiException);
      assert.equal(outcomeFromError(normalizeKubeError(error)).kind, 'throttled');
      return true;
    });
    assert.deepEqual(state.pauses, [2_000, 3_000]);
  });

  describe('when applying (server-side apply)', () => {
    it('finds the resource of a kind it was not told about with one discovery request per group version', async () => {
      const { budget, state } = countingBudget();
      const client = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget, fieldManager: 'tester' });
      sim.resetCounters();
      for (const name of ['applied-1', 'applied-2']) {
        const applied = await client.apply<{ data?: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name, namespace: 'default' },
          data: { a: name },
        });
        assert.equal(applied.data?.a, name);
      }
      assert.equal(sim.counters().byVerb.patch, 2);
      assert.equal(state.taken, 3, 'one discovery GET (paid like every request), then the two applies');
    });

    it('needs no discovery for a kind among its known resources, and refuses to apply without a field manager', async () => {
      const known = new KubeApiClient({
        kubeConfig: sim.kubeConfig(),
        budget: countingBudget().budget,
        fieldManager: 'tester',
        resources: [{ ...CONFIGMAPS, kind: 'ConfigMap' }],
      });
      sim.resetCounters();
      await known.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'known', namespace: 'default' } });
      assert.equal(sim.counters().total, 1);
      const anonymous = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: countingBudget().budget });
      await assert.rejects(
        anonymous.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' } }),
        (error: Error) => error instanceof InvalidArgumentError && /field manager/.test(error.message),
      );
    });

    it('throws a FieldConflictError naming the other manager and each field, which retrying may resolve', async () => {
      const key = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shared-cm', namespace: 'default' } };
      const first = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: countingBudget().budget, fieldManager: 'first' });
      const second = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: countingBudget().budget, fieldManager: 'second' });
      await first.apply({ ...key, data: { a: '1', b: '1' } });
      const error = await second.apply({ ...key, data: { a: '2', b: '2' } }).catch((e: unknown) => e);
      assert.ok(error instanceof FieldConflictError, String(error));
      assert.equal(error.statusCode, 409);
      assert.equal(error.manager, 'second');
      assert.deepEqual(error.conflicts, [
        { manager: 'first', field: '.data.a' },
        { manager: 'first', field: '.data.b' },
      ]);
      assert.equal(outcomeFromError(error).kind, 'error');
    });
  });
});

describe('Connection reuse', () => {
  it('sends a worker’s API calls, its own and client-node’s typed APIs, over a few kept-alive connections', async () => {
    // A bare API endpoint that counts TCP connections; client-node would otherwise open one per call.
    let connections = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' } }));
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 'secret' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const client = new KubeApiClient({ kubeConfig: kc, budget: countingBudget().budget });
      for (let i = 0; i < 100; i += 1) await client.get({ ...CONFIGMAPS, namespace: 'default', name: 'x' });
      const core = client.api(CoreV1Api);
      for (let i = 0; i < 50; i += 1) await core.readNamespacedConfigMap({ name: 'x', namespace: 'default' });
      assert.ok(connections <= 3, `150 calls opened ${connections} connections`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('Function: applyKubeAuth', () => {
  it('hands every request of a KubeConfig the same connection pool, and a fresh one once the pool is five minutes old', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 'secret' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    let clock = 1_000_000;
    const pool = async () =>
      (await applyKubeAuth(kc, new RequestContext('https://127.0.0.1:1/api', HttpMethod.GET), () => clock)).getDispatcher();
    const first = await pool();
    assert.ok(first !== undefined, 'client-node gives TLS requests a dispatcher');
    clock += DISPATCHER_MAX_AGE_MS - 1;
    assert.equal(await pool(), first, 'reused within the age limit');
    clock += 1;
    const renewed = await pool();
    assert.notEqual(renewed, first, 'replaced once old, so rotated client certificates are picked up');
    assert.equal(await pool(), renewed);
  });
});
