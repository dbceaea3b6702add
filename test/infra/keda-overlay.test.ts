// The containers-keda overlay can scale: a watcher running its configuration (built-in autoscaler off) exports the real backlog KEDA reads.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, loadConfig } from '@conveyor/shared';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import widgets from '../../examples/widgets/controller.ts';
import { startWidgetWorld, type WidgetWorld } from '../../examples/widgets/widget-harness.ts';
import { noKubectl, renderKustomization } from '../support/kustomize.ts';
import { waitFor } from '../support/wait-for.ts';
import { repoRoot } from '../support/widget-build.ts';

describe('infra/overlays/containers-keda: the watcher exports what the ScaledObject reads', { skip: noKubectl }, () => {
  let world: WidgetWorld;
  let watcher: WatcherHandle | undefined;

  before(async () => {
    world = await startWidgetWorld();
    await world.client.create(
      { group: '', version: 'v1', plural: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'conveyor-system' } },
    );
  });
  after(async () => {
    await watcher?.close();
    await world?.close();
  });

  it('scrapes conveyor_backlog equal to the requests waiting, with no worker running and nothing scaled', async () => {
    const docs = renderKustomization(`${repoRoot}infra/overlays/containers-keda`);
    const scaledObject = JSON.stringify(docs.find((d) => d.kind === 'ScaledObject'));
    assert.match(scaledObject, /conveyor_backlog\{controller=\\"widgets\\"\}/);
    // The overlay's ConfigMap as the pod mounts it, plus what differs on this machine: Redis, the API server, a port.
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-keda-'));
    const configMap = docs.find((d) => d.kind === 'ConfigMap');
    for (const [name, text] of Object.entries(configMap?.data ?? {})) writeFileSync(join(dir, name), text);
    const config = loadConfig({
      file: dir,
      env: {},
      overrides: {
        'redis.url': world.config.redis.url,
        'redis.prefix': world.config.redis.prefix,
        'kube.inCluster': false,
        'kube.server': world.sim.url,
        'kube.token': world.sim.token,
        'kube.insecureSkipTlsVerify': true,
        'http.host': '127.0.0.1',
        'http.port': 0,
        // Measured every 15 s in the overlay; sooner here so the test need not wait.
        'autoscaler.interval': '200ms',
        'log.level': 'silent',
      },
    });
    assert.equal(config.autoscaler.enabled, false, 'KEDA, not the built-in autoscaler, scales in this overlay');
    assert.equal(config.watcher.leaderElect, true);

    await world.createWidgets(40);
    world.sim.resetCounters();
    watcher = await runWatcher({ controller: widgets, config, logger: createLogger({ level: 'silent' }) });
    const metrics = async () => (await fetch(`${watcher?.url}/metrics`)).text();
    await waitFor(
      'conveyor_backlog at 40',
      async () => /^conveyor_backlog\{controller="widgets"\} 40$/m.test(await metrics()),
      30_000,
      100,
    );
    const text = await metrics();
    assert.match(text, /^conveyor_desired_workers\{controller="widgets"\} [1-9]\d*$/m);
    const depth = await world.queue.getDepth();
    assert.equal(depth.waiting + depth.prioritized + depth.delayedDue, 40);
    const scaled = world.sim.counters().entries.filter((e) => e.resource.includes('deployments'));
    assert.deepEqual(scaled, [], 'the watcher scaled nothing itself');
  });
});
