// Rendering a kustomize overlay with the real kubectl, and the configuration its pods would read, for the manifest tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthorizationRule } from '@conveyor/test';
import { parseAllDocuments } from 'yaml';
import { main } from '../../cli/main.ts';

const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
/** A skip reason when kubectl is missing (CI and these machines have it; a developer without it still gets the other tests). */
export const noKubectl =
  probe.error !== undefined || probe.status !== 0 ? 'kubectl is not on PATH, so overlays cannot be rendered here' : false;

export interface PolicyRuleDoc {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface KubeDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: PolicyRuleDoc[];
  subjects?: { kind: string; name: string; namespace?: string }[];
  roleRef?: { kind: string; name: string };
  data?: Record<string, string>;
  spec?: { replicas?: number; template?: { spec: { containers: { args: string[] }[] } } };
}

/** `kubectl kustomize <dir>`, as documents. */
export function renderKustomization(dir: string): KubeDoc[] {
  const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return parseAllDocuments(result.stdout).map((d) => d.toJSON() as KubeDoc);
}

/** The configuration a pod reads from the rendered `conveyor-config` ConfigMap (mounted as a directory), as `conveyor config --json` prints it. */
export async function effectiveConfig(docs: KubeDoc[]): Promise<Record<string, Record<string, unknown>>> {
  const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('conveyor-config'));
  assert.ok(configMap?.data !== undefined, 'no conveyor-config ConfigMap');
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-configmap-'));
  for (const [name, text] of Object.entries(configMap.data)) writeFileSync(join(dir, name), text);
  const out: string[] = [];
  const code = await main(['config', '--config', dir, '--json'], { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
  assert.equal(code, 0, out.join('\n'));
  return JSON.parse(out.join('\n')) as Record<string, Record<string, unknown>>;
}

/** Whether a rule of these Roles lets `verb` on the Lease `name`. */
export function leaseAllowed(roles: readonly KubeDoc[], verb: string, name: string): boolean {
  return roles.some((role) =>
    (role.rules ?? []).some(
      (r) =>
        r.apiGroups.includes('coordination.k8s.io') &&
        r.resources.includes('leases') &&
        r.verbs.includes(verb) &&
        (r.resourceNames === undefined || r.resourceNames.includes(name)),
    ),
  );
}

/** The simulator's authorization rules equivalent to rendered RBAC: each binding's rules for its ServiceAccount subjects. */
export function authorizationRulesFromRbac(docs: readonly KubeDoc[]): AuthorizationRule[] {
  const rules: AuthorizationRule[] = [];
  for (const binding of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
    const role = docs.find((d) => d.kind === binding.roleRef?.kind && d.metadata.name === binding.roleRef?.name);
    assert.ok(role !== undefined, `${binding.kind} ${binding.metadata.name} refers to a role the manifests lack`);
    const users = (binding.subjects ?? [])
      .filter((s) => s.kind === 'ServiceAccount')
      .map((s) => `system:serviceaccount:${s.namespace ?? binding.metadata.namespace}:${s.name}`);
    // A RoleBinding grants its rules in its own namespace only; a ClusterRoleBinding everywhere, cluster scope included.
    const namespaces = binding.kind === 'RoleBinding' ? [binding.metadata.namespace ?? 'default'] : undefined;
    for (const r of role.rules ?? []) {
      rules.push({
        users,
        verbs: r.verbs,
        apiGroups: r.apiGroups,
        resources: r.resources,
        ...(r.resourceNames === undefined ? {} : { resourceNames: r.resourceNames }),
        ...(namespaces === undefined ? {} : { namespaces }),
      });
    }
  }
  return rules;
}
