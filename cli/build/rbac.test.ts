// RBAC derived from a controller definition: what each identity may do follows what the definition names, and nothing else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineController } from '@conveyor/shared';
import { type PolicyRule, watcherClusterRules, workerRules } from './rbac.ts';

const base = {
  name: 'sites',
  for: { group: 'example.com', version: 'v1', plural: 'sites', kind: 'Site' },
  reconcile: async () => undefined,
};
const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' };

const verbsOn = (rules: PolicyRule[], group: string, resource: string) =>
  rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);

describe('Function: RBAC from a controller definition', () => {
  it('gives workers a rule on an owned kind as soon as the controller owns it, and none before', () => {
    assert.deepEqual(verbsOn(workerRules(defineController(base)), 'apps', 'deployments'), []);
    const owning = defineController({ ...base, owns: [DEPLOYMENTS] });
    assert.deepEqual(verbsOn(workerRules(owning), 'apps', 'deployments'), ['get', 'create', 'update', 'patch', 'delete']);
    assert.deepEqual(verbsOn(watcherClusterRules(owning, { tokenReview: false }), 'apps', 'deployments'), ['list', 'watch']);
  });

  it('lets the watcher list and watch its resource, owned and mapped kinds, and nothing else', () => {
    const controller = defineController({
      ...base,
      owns: [{ group: '', version: 'v1', plural: 'configmaps' }],
      watches: [{ resource: { group: '', version: 'v1', plural: 'secrets' }, map: () => [] }],
    });
    const rules = watcherClusterRules(controller, { tokenReview: false });
    assert.deepEqual(rules, [
      { apiGroups: ['example.com'], resources: ['sites'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['list', 'watch'] },
    ]);
    const withReviews = watcherClusterRules(controller, { tokenReview: true }).flatMap((r) => r.resources);
    assert.ok(withReviews.includes('tokenreviews') && withReviews.includes('subjectaccessreviews'));
  });

  it('lets workers read and patch the object and its status, record Events, and never list, watch or use a wildcard', () => {
    const rules = workerRules(defineController({ ...base, owns: [DEPLOYMENTS] }));
    assert.deepEqual(verbsOn(rules, 'example.com', 'sites'), ['get', 'patch']);
    assert.deepEqual(verbsOn(rules, 'example.com', 'sites/status'), ['get', 'patch']);
    assert.deepEqual(verbsOn(rules, 'events.k8s.io', 'events'), ['create', 'patch']);
    for (const rule of rules) {
      for (const value of [...rule.apiGroups, ...rule.resources, ...rule.verbs]) assert.notEqual(value, '*');
      assert.ok(!rule.verbs.includes('list') && !rule.verbs.includes('watch'));
    }
  });
});
