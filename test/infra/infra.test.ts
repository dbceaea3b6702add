import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { globSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@conveyor/shared';
import { parseAllDocuments } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const noKubectl =
  kubectl.error !== undefined || kubectl.status !== 0 ? 'kubectl is not on PATH, so overlays cannot be rendered here' : false;

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

function documents(text: string): { kind?: string; metadata?: { name?: string }; rules?: Rule[] }[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as { kind?: string; rules?: Rule[] });
}

describe('infra/: kustomize manifests', () => {
  for (const overlay of ['containers', 'containers-keda', 'lambda']) {
    it(`renders overlays/${overlay} with kubectl kustomize`, { skip: noKubectl }, () => {
      const result = spawnSync('kubectl', ['kustomize', `infra/overlays/${overlay}`], { cwd: root, encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      const kinds = documents(result.stdout).map((d) => d.kind);
      for (const kind of ['Namespace', 'ServiceAccount', 'ClusterRole', 'Role', 'ConfigMap', 'Deployment'])
        assert.ok(kinds.includes(kind), `${overlay} lacks ${kind}`);
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
    const verbs = (worker?.rules ?? []).flatMap((r) => r.verbs ?? []);
    assert.ok(verbs.includes('get') && !verbs.includes('list') && !verbs.includes('watch'));
  });

  for (const file of globSync('infra/**/conveyor.yaml', { cwd: root })) {
    it(`ships a configuration the loader accepts: ${file}`, () => {
      const config = loadConfig({ file: `${root}${file}`, env: {} });
      assert.equal(config.kube.inCluster, true);
    });
  }

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
