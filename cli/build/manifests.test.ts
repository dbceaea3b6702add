// The kustomize tree of conveyor build, rendered by kubectl: effective configuration per overlay, the Leases its RBAC names, the sharded StatefulSet.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { defineController } from '@conveyor/shared';
import { leaseName } from '@conveyor/watcher/run-watcher';
import { effectiveConfig, leaseAllowed, noKubectl, renderKustomization } from '../../test/support/kustomize.ts';
import { CONFIG_DIR, manifestFiles } from './manifests.ts';

const controller = defineController({
  name: 'sites',
  for: { group: 'example.com', version: 'v1', plural: 'sites', kind: 'Site' },
  owns: [{ group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' }],
  reconcile: async () => undefined,
});
const SHARDS = 3;

function writeTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-manifests-'));
  const files = manifestFiles({
    controller,
    image: 'registry.example/sites:1.2.3',
    namespace: 'sites-system',
    shards: SHARDS,
    functionName: 'conveyor-sites-prod-reconcile',
    region: 'eu-west-1',
  });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function render(dir: string, overlay: string) {
  return renderKustomization(join(dir, 'overlays', overlay));
}

describe('Function: manifestFiles (the kustomize tree of conveyor build)', { skip: noKubectl }, () => {
  const dir = writeTree();
  const overlays = ['containers', 'containers-keda', 'lambda', 'sharded'];

  for (const overlay of overlays) {
    it(`renders overlays/${overlay}, whose configuration keeps the base's API, leader election and budget settings`, async () => {
      const docs = render(dir, overlay);
      const config = await effectiveConfig(docs);
      assert.equal(config.api?.tokenReview, true);
      assert.equal(config.watcher?.leaderElect, true);
      assert.equal(config.watcher?.leaseNamespace, 'sites-system');
      assert.deepEqual(config.apiBudget, { qps: 50, burst: 100 });
      assert.equal(config.kube?.inCluster, true);
      assert.equal(config.autoscaler?.enabled, overlay === 'containers' || overlay === 'lambda');
      for (const doc of docs.filter((d) => d.spec?.template !== undefined)) {
        const args = doc.spec?.template?.spec.containers[0]?.args ?? [];
        assert.equal(args[args.indexOf('--config') + 1], CONFIG_DIR, `${doc.kind} ${doc.metadata.name} reads the whole ConfigMap`);
      }
      const images = docs.flatMap((d) => JSON.stringify(d).match(/"image":"[^"]+"/g) ?? []);
      assert.ok(images.length > 0 && images.every((i) => i === '"image":"registry.example/sites:1.2.3"'), images.join(', '));
    });
  }

  it('gives every Lease name the watchers use to the watcher identity, per shard too, and no other', () => {
    for (const overlay of overlays) {
      const docs = render(dir, overlay);
      const roles = docs.filter((d) => d.kind === 'Role');
      const sharded = docs.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'conveyor-watcher');
      const names =
        sharded === undefined
          ? [leaseName('sites', undefined)]
          : Array.from({ length: sharded.spec?.replicas ?? 0 }, (_, index) => leaseName('sites', { index, count: SHARDS }));
      for (const name of names) {
        for (const verb of ['get', 'update']) assert.ok(leaseAllowed(roles, verb, name), `${overlay}: ${verb} on Lease ${name}`);
      }
      assert.ok(!leaseAllowed(roles, 'get', 'someone-elses-lease'), `${overlay}: a Lease it does not use`);
    }
  });

  it('runs the sharded watchers as a StatefulSet with --shard ordinal/n instead of the base’s Deployment', () => {
    const docs = render(dir, 'sharded');
    const watchers = docs.filter((d) => d.metadata.name === 'conveyor-watcher' && (d.kind === 'Deployment' || d.kind === 'StatefulSet'));
    assert.deepEqual(
      watchers.map((d) => d.kind),
      ['StatefulSet'],
    );
    assert.equal(watchers[0]?.spec?.replicas, SHARDS);
    assert.deepEqual(watchers[0]?.spec?.template?.spec.containers[0]?.args.slice(-2), ['--shard', `ordinal/${SHARDS}`]);
    assert.ok(
      docs.some((d) => d.kind === 'ScaledObject'),
      'KEDA scales the workers: the watchers export the backlog',
    );
  });

  it('lets only the containers overlay’s watcher scale the worker Deployment', () => {
    for (const overlay of overlays) {
      const rules = render(dir, overlay)
        .filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole')
        .flatMap((d) => d.rules ?? []);
      const scales = rules.some((r) => r.resources.includes('deployments/scale'));
      assert.equal(scales, overlay === 'containers', overlay);
    }
  });
});
