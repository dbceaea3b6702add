// The shipped RBAC, enforced: sharded watchers holding only what infra/overlays/sharded grants take their per-shard Leases on the simulator.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createKubeConfig, createLogger, KubeApiClient, KubeApiError, loadConfig, unlimitedBudget } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { leaseName, runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { parse } from 'yaml';
import widgets from '../../examples/widgets/controller.ts';
import { authorizationRulesFromRbac, type KubeDoc, noKubectl, renderKustomization } from '../support/kustomize.ts';
import { RedisServer } from '../support/redis-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { repoRoot } from '../support/widget-build.ts';

const WATCHER = 'system:serviceaccount:conveyor-system:conveyor-watcher';
const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

describe('infra/overlays/sharded RBAC on the simulator', { skip: noKubectl }, () => {
  let sim: KubeSimulator;
  let redis: RedisServer;
  let docs: KubeDoc[];
  const watchers: WatcherHandle[] = [];

  before(async () => {
    docs = renderKustomization(`${repoRoot}infra/overlays/sharded`);
    sim = await startKubeSimulator({
      tokens: ['admin-token', { token: 'watcher-token', username: WATCHER, groups: ['system:serviceaccounts', 'system:authenticated'] }],
      authorization: [{ users: ['admin'] }, ...authorizationRulesFromRbac(docs)],
    });
    redis = await RedisServer.start();
    const admin = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: unlimitedBudget });
    await admin.create(
      { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' },
      parse(readFileSync(`${repoRoot}examples/widgets/widget-crd.yaml`, 'utf8')),
    );
    await admin.create(
      { group: '', version: 'v1', plural: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'conveyor-system' } },
    );
  });
  after(async () => {
    for (const watcher of watchers) await watcher.close();
    await sim?.close();
    await redis?.close();
  });

  it('lets each of the StatefulSet’s shards take its own Lease, and no Lease it does not use', async () => {
    const statefulSet = docs.find((d) => d.kind === 'StatefulSet');
    const count = statefulSet?.spec?.replicas ?? 0;
    assert.ok(count >= 2, 'the sharded overlay runs at least two shards');
    const kube = { server: sim.url, token: 'watcher-token', insecureSkipTlsVerify: true, inCluster: false };
    const config = loadConfig({
      env: {},
      overrides: {
        'redis.url': redis.url,
        'http.host': '127.0.0.1',
        'http.port': 0,
        'watcher.leaderElect': true,
        'watcher.leaseNamespace': 'conveyor-system',
        'log.level': 'silent',
      },
    });
    for (let index = 0; index < count; index += 1) {
      watchers.push(
        await runWatcher({
          controller: widgets,
          config,
          logger: createLogger({ level: 'silent' }),
          shard: { index, count },
          kubeConfig: createKubeConfig(kube),
          identity: `conveyor-watcher-${index}`,
        }),
      );
    }
    await waitFor('every shard leading and synced', () => watchers.every((w) => w.isActive() && w.isReady()), 30_000);
    const admin = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: unlimitedBudget });
    for (let index = 0; index < count; index += 1) {
      const lease = await admin.get<{ spec?: { holderIdentity?: string } } & { metadata: { name: string } }>({
        ...LEASES,
        namespace: 'conveyor-system',
        name: leaseName('widgets', { index, count }),
      });
      assert.equal(lease.spec?.holderIdentity, `conveyor-watcher-${index}`);
    }
    // The RBAC names exactly these Leases: another shard count's Lease is refused.
    const asWatcher = new KubeApiClient({ kubeConfig: createKubeConfig(kube), budget: unlimitedBudget });
    await assert.rejects(
      asWatcher.get({ ...LEASES, namespace: 'conveyor-system', name: leaseName('widgets', { index: 0, count: count + 1 }) }),
      (error: unknown) => error instanceof KubeApiError && error.statusCode === 403,
    );
  });
});
