// Sharded watchers on the simulator under the generated RBAC: a replica refused its Lease says which rule is missing and is not ready, and shards run one autoscaler between them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Config, createKubeConfig, createLogger, KubeApiClient, loadConfig, unlimitedBudget } from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import type { Shard } from '@conveyor/watcher/sharding';
import { parse } from 'yaml';
import widgets from '../../examples/widgets/controller.ts';
import { authorizationRulesFromRbac, type KubeDoc, noKubectl, renderKustomization } from '../support/kustomize.ts';
import { RedisServer } from '../support/redis-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { repoRoot } from '../support/widget-build.ts';

const WATCHER = 'system:serviceaccount:conveyor-system:conveyor-watcher';

describe('sharded watchers under the sharded overlay’s RBAC', { skip: noKubectl }, () => {
  let sim: KubeSimulator;
  let redis: RedisServer;
  let docs: KubeDoc[];
  let config: Config;
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
    config = loadConfig({
      env: {},
      overrides: {
        'redis.url': redis.url,
        'http.host': '127.0.0.1',
        'http.port': 0,
        'watcher.leaderElect': true,
        'watcher.leaseNamespace': 'conveyor-system',
        'watcher.leaseDuration': '3s',
      },
    });
  });
  after(async () => {
    for (const watcher of watchers) await watcher.close();
    await sim?.close();
    await redis?.close();
  });

  async function start(shard: Shard, lines: string[] = []): Promise<WatcherHandle> {
    const kube = { server: sim.url, token: 'watcher-token', insecureSkipTlsVerify: true, inCluster: false };
    const handle = await runWatcher({
      controller: widgets,
      config,
      logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } }),
      shard,
      kubeConfig: createKubeConfig(kube),
      identity: `conveyor-watcher-${shard.index}-of-${shard.count}`,
    });
    watchers.push(handle);
    return handle;
  }

  const get = async (handle: WatcherHandle, path: string) => {
    const response = await fetch(`${handle.url}${path}`);
    return { status: response.status, body: await response.text() };
  };

  it('a shard whose Lease the Role does not name fails /readyz and logs, at error level, the rule it lacks', async () => {
    // The StatefulSet scaled to 3 without regenerating the RBAC, which names the Leases of 2 shards.
    const lines: string[] = [];
    const third = await start({ index: 0, count: 3 }, lines);
    await waitFor('readiness to name the Lease', async () => (await get(third, '/readyz')).body.startsWith('cannot lead'));
    const ready = await get(third, '/readyz');
    assert.match(
      ready.body,
      /^cannot lead: forbidden to get Lease conveyor-system\/conveyor-widgets-watcher-0-of-3: the Role in conveyor-system needs \{ apiGroups: \[coordination.k8s.io\], resources: \[leases\], resourceNames: \[conveyor-widgets-watcher-0-of-3\], verbs: \[get, update\] \}/,
    );
    assert.equal((await get(third, '/healthz')).status, 200, 'alive: a restart would not help');
    assert.equal(third.isActive(), false);
    // The elector retries every half second (a 3 s lease): a few retries later there is still one error line.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    assert.equal((await get(third, '/readyz')).status, 503);
    const errors = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; missingRule?: string })
      .filter((l) => l.level >= 50);
    assert.equal(errors.length, 1, 'one error line, not one per retry');
    assert.match(
      errors[0]?.msg ?? '',
      /cannot take part in leader election: forbidden to get Lease conveyor-system\/conveyor-widgets-watcher-0-of-3/,
    );
    assert.equal(
      errors[0]?.missingRule,
      'apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [conveyor-widgets-watcher-0-of-3], verbs: [get, update]',
    );
    await third.close();
  });

  it('two shards both lead, and only shard 0 runs the autoscaler (one set of backlog and desired-workers gauges)', async () => {
    const shards = [await start({ index: 0, count: 2 }), await start({ index: 1, count: 2 })];
    await waitFor('both shards leading and synced', () => shards.every((w) => w.isActive() && w.isReady()), 30_000);
    for (const shard of shards) assert.deepEqual(await get(shard, '/readyz'), { status: 200, body: 'ok\n' });
    const exports = await Promise.all(
      shards.map(async (shard) => /^conveyor_desired_workers\{controller="widgets"\}/m.test((await get(shard, '/metrics')).body)),
    );
    assert.deepEqual(exports, [true, false]);
  });
});
