// The simulator without its controllers: what a cluster without kube-controller-manager leaves undone.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type KubeSimulator, startKubeSimulator } from './simulator.ts';

/** A tiny client for one simulator: JSON in, status and JSON out. */
function client(sim: KubeSimulator) {
  return async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${sim.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { code: response.status, body: (await response.json()) as { metadata?: Record<string, unknown>; status?: { phase?: string } } };
  };
}

const configMap = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...extra },
});

describe('Kubernetes API simulator: controllerManager: false is an API server without kube-controller-manager', () => {
  let sim: KubeSimulator;
  let call: ReturnType<typeof client>;
  before(async () => {
    sim = await startKubeSimulator({ controllerManager: false });
    call = client(sim);
  });
  after(async () => {
    await sim.close();
  });

  it('leaves the dependents of a deleted owner, and a foreground-deleted owner waiting with its finalizer', async () => {
    const owner = await call('POST', '/api/v1/namespaces/default/configmaps', configMap('owner'));
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.body.metadata?.uid };
    await call('POST', '/api/v1/namespaces/default/configmaps', configMap('dependent', { ownerReferences: [ref] }));
    await call('POST', '/api/v1/namespaces/default/configmaps', configMap('waiting'));
    assert.equal((await call('DELETE', '/api/v1/namespaces/default/configmaps/owner')).code, 200);
    const foreground = await call('DELETE', '/api/v1/namespaces/default/configmaps/waiting?propagationPolicy=Foreground');
    assert.deepEqual(foreground.body.metadata?.finalizers, ['foregroundDeletion']);
    // Nothing would happen later either: there is no collector. Give the event loop a few turns to show it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps/dependent')).code, 200);
    assert.deepEqual((await call('GET', '/api/v1/namespaces/default/configmaps/waiting')).body.metadata?.finalizers, [
      'foregroundDeletion',
    ]);
  });

  it('leaves a deleted namespace Terminating with its contents', async () => {
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'stays' } });
    await call('POST', '/api/v1/namespaces/stays/configmaps', configMap('inside'));
    const deleted = await call('DELETE', '/api/v1/namespaces/stays');
    assert.equal(deleted.body.status?.phase, 'Terminating');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await call('GET', '/api/v1/namespaces/stays')).body.status?.phase, 'Terminating');
    assert.equal((await call('GET', '/api/v1/namespaces/stays/configmaps/inside')).code, 200);
    assert.equal((await call('POST', '/api/v1/namespaces/stays/configmaps', configMap('late'))).code, 403);
  });
});
