// infra/ and serverless.yml: what `npm run build:widgets` (conveyor build for examples/widgets) writes, and what its overlays render to.
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadController } from '@conveyor/workers/load-controller';
import { parseAllDocuments } from 'yaml';
import { plannedTextFiles } from '../../cli/build/build-command.ts';
import { effectiveConfig, noKubectl, renderKustomization } from '../support/kustomize.ts';
import { widgetBuildOptions } from '../support/widget-build.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

function documents(text: string): { kind?: string; metadata?: { name?: string }; rules?: Rule[] }[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as { kind?: string; rules?: Rule[] });
}

/** Files in infra/ that conveyor build does not write: kept by hand. */
const HAND_WRITTEN = /^infra\/(README\.md|monitoring\/)/;

describe('infra/: kustomize manifests', () => {
  it('holds exactly what `npm run build:widgets` writes, byte for byte, and so does serverless.yml (run it after changing the generator)', async () => {
    const options = widgetBuildOptions();
    const controller = await loadController(options.controllerModule, root);
    const planned = [...plannedTextFiles(controller, options)].filter(([path]) => path.startsWith('infra/') || path === 'serverless.yml');
    assert.ok(planned.length > 15, `build:widgets plans only ${planned.length} files under infra/`);
    const stale = planned.filter(([path, text]) => {
      try {
        return readFileSync(`${root}${path}`, 'utf8') !== text;
      } catch {
        return true;
      }
    });
    assert.deepEqual(
      stale.map(([path]) => path),
      [],
      'stale: run `npm run build:widgets` and commit what it writes',
    );
    const extra = globSync('infra/**/*', { cwd: root, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => `${entry.parentPath.slice(root.length)}/${entry.name}`)
      .filter((path) => !HAND_WRITTEN.test(path) && !planned.some(([p]) => p === path));
    assert.deepEqual(extra, [], 'files in infra/ that conveyor build no longer writes');
  });

  for (const overlay of ['containers', 'containers-keda', 'lambda', 'sharded']) {
    it(`renders overlays/${overlay}, whose effective configuration keeps the API, leader election and budget settings`, {
      skip: noKubectl,
    }, async () => {
      const docs = renderKustomization(`${root}infra/overlays/${overlay}`);
      const kinds = docs.map((d) => d.kind);
      for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'Role', 'ConfigMap', 'Deployment'])
        assert.ok(kinds.includes(kind), `${overlay} lacks ${kind}`);
      const config = await effectiveConfig(docs);
      assert.equal(config.api?.tokenReview, true);
      assert.equal(config.watcher?.leaderElect, true);
      assert.deepEqual(config.apiBudget, { qps: 50, burst: 100 });
      assert.equal(config.kube?.inCluster, true);
    });
  }

  it('grants no wildcard verbs, resources or API groups in any role', () => {
    const files = globSync('infra/**/*.yaml', { cwd: root });
    let rules = 0;
    for (const file of files) {
      for (const doc of documents(readFileSync(`${root}${file}`, 'utf8'))) {
        if (doc.kind !== 'Role' && doc.kind !== 'ClusterRole') continue;
        for (const rule of doc.rules ?? []) {
          rules += 1;
          for (const field of ['apiGroups', 'resources', 'verbs'] as const) {
            assert.ok(!(rule[field] ?? []).includes('*'), `${file} ${doc.metadata?.name}: wildcard in ${field}`);
          }
          assert.ok(!(rule.verbs ?? []).includes('escalate') && !(rule.verbs ?? []).includes('bind'), `${file}: escalate/bind`);
        }
      }
    }
    assert.ok(rules >= 8, `expected the watcher and worker rules, found ${rules}`);
  });

  it('gives workers no list or watch: they fetch each object by name', () => {
    const worker = documents(readFileSync(`${root}infra/base/rbac-worker.yaml`, 'utf8')).find((d) => d.kind === 'ClusterRole');
    assert.ok(worker !== undefined);
    const verbs = (worker?.rules ?? []).flatMap((r) => r.verbs ?? []);
    assert.ok(verbs.includes('get') && !verbs.includes('list') && !verbs.includes('watch'));
  });

  it('ships a Grafana dashboard whose queries use the exported metric names', () => {
    const dashboard = JSON.parse(readFileSync(`${root}infra/monitoring/conveyor-dashboard.json`, 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const name of [
      'controller_runtime_reconcile_total',
      'controller_runtime_reconcile_errors_total',
      'controller_runtime_reconcile_time_seconds_bucket',
      'workqueue_depth',
      'workqueue_adds_total',
      'workqueue_queue_duration_seconds_bucket',
      'workqueue_retries_total',
      'conveyor_backlog',
      'conveyor_desired_workers',
      'conveyor_watch_events_total',
    ]) {
      assert.ok(exprs.includes(name), `dashboard does not chart ${name}`);
    }
  });
});
