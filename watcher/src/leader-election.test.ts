import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger, KubeApiClient, type KubeTransport } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { waitFor } from '@conveyor/test/support/queue-fixtures';
import { LeaderElector, microTime } from './leader-election.ts';

const logger = createLogger({ level: 'silent' });
const leasePath = (name: string) => `/apis/coordination.k8s.io/v1/namespaces/default/leases/${name}`;
type Lease = { metadata: { resourceVersion: string }; spec: { holderIdentity?: string | null; leaseTransitions?: number } };

describe('LeaderElector on the simulator', () => {
  let sim: KubeSimulator;
  let transport: KubeTransport;
  const electors: LeaderElector[] = [];

  before(async () => {
    sim = await startKubeSimulator();
    transport = new KubeApiClient({ kubeConfig: sim.kubeConfig() });
  });
  after(async () => {
    for (const e of electors) await e.stop();
    await sim.close();
  });

  function candidate(name: string, identity: string, leaseDurationMs: number, changes: boolean[] = []): LeaderElector {
    const elector = new LeaderElector({
      transport,
      namespace: 'default',
      name,
      identity,
      leaseDurationMs,
      logger,
      onChange: (leading) => {
        changes.push(leading);
      },
    });
    electors.push(elector);
    elector.start();
    return elector;
  }

  const lease = async (name: string) => (await transport.request('GET', leasePath(name))) as Lease;

  it('elects one of two candidates; stop() releases the lease and the other takes over at once', async () => {
    const a = candidate('two', 'a', 30_000);
    await waitFor('a to create and take the lease', () => a.leading);
    const b = candidate('two', 'b', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(b.leading, false, 'b stands by while a holds the lease');
    await a.stop();
    assert.equal((await lease('two')).spec.holderIdentity ?? '', '', 'released');
    // A 30 s lease: only the release lets b in before its expiry (b reads the lease every 5 s).
    await waitFor('b to take the released lease', () => b.leading, 10_000);
    assert.equal((await lease('two')).spec.holderIdentity, 'b');
  });

  it('waits a whole lease duration after the last renewal it saw before taking a lease from a silent holder', async () => {
    const now = Date.now();
    await transport.request('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'ghost', namespace: 'default' },
      spec: {
        holderIdentity: 'crashed',
        leaseDurationSeconds: 2,
        renewTime: microTime(now),
        acquireTime: microTime(now),
        leaseTransitions: 3,
      },
    });
    const started = Date.now();
    const c = candidate('ghost', 'c', 2_000);
    await waitFor('c to take the expired lease', () => c.leading, 10_000);
    assert.ok(Date.now() - started >= 2_000, `took over after ${Date.now() - started} ms, before the lease expired`);
    const taken = await lease('ghost');
    assert.equal(taken.spec.holderIdentity, 'c');
    assert.equal(taken.spec.leaseTransitions, 4);
  });

  it('steps down when another replica writes itself into the lease', async () => {
    const changes: boolean[] = [];
    const d = candidate('stolen', 'd', 3_000, changes);
    await waitFor('d to lead', () => d.leading);
    const current = await lease('stolen');
    await transport.request('PUT', leasePath('stolen'), {
      ...current,
      spec: { ...current.spec, holderIdentity: 'intruder', renewTime: microTime(Date.now()) },
    });
    await waitFor('d to step down', () => !d.leading, 10_000);
    assert.deepEqual(changes.slice(0, 2), [true, false]);
  });

  it('steps down when it cannot renew within two thirds of the lease (API server hanging), and leads again once it answers', async () => {
    const changes: boolean[] = [];
    const e = candidate('hung', 'e', 3_000, changes);
    await waitFor('e to lead', () => e.leading);
    sim.faults.pause();
    try {
      await waitFor('e to step down', () => !e.leading, 10_000);
    } finally {
      sim.faults.resume();
    }
    await waitFor('e to lead again', () => e.leading, 15_000);
    assert.deepEqual(changes, [true, false, true]);
  });
});
