// RBAC derived from a controller definition, as kubebuilder's `make manifests` derives it from markers: each identity gets
// the verbs the code it runs really uses, on the resources the definition names, and nothing else (no wildcard).
//
// - watcher: list and watch (metadata-only requests still need both) on `for`, `owns` and `watches`; create on
//   Leases and get/update on the Lease names it will use (leader-election.ts GETs, PUTs and POSTs them); create on
//   TokenReviews and SubjectAccessReviews when the reconcile API checks callers with them.
// - autoscaler (in the watcher, when it scales a Deployment): get and patch on that Deployment's scale subresource.
// - workers: get and patch on `for` (finalizer add/remove) and on `for`/status (the one status write), the verbs a
//   reconcile uses on the kinds it owns, create and patch on events.k8s.io Events (ctx.events).
// - dispatcher: nothing; it talks to Redis and AWS Lambda only.
import type { ControllerSpec, ResourceSpec } from '@conveyor/shared';

/** rbac.authorization.k8s.io/v1 PolicyRule, in the field order kubectl prints. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** What a reconcile may do with the objects it owns: read them, create, change and delete them. */
export const OWNED_VERBS = ['get', 'create', 'update', 'patch', 'delete'];

/** Rules with the same group and verbs merged into one, resources sorted; rules in the order their first resource came. */
function grouped(entries: readonly { group: string; resource: string; verbs: readonly string[] }[]): PolicyRule[] {
  const rules = new Map<string, PolicyRule>();
  for (const entry of entries) {
    const id = `${entry.group}|${entry.verbs.join(',')}`;
    const rule = rules.get(id) ?? { apiGroups: [entry.group], resources: [], verbs: [...entry.verbs] };
    if (!rule.resources.includes(entry.resource)) rule.resources.push(entry.resource);
    rules.set(id, rule);
  }
  return [...rules.values()].map((rule) => ({ ...rule, resources: rule.resources.sort() }));
}

const reads = (resources: readonly ResourceSpec[]) =>
  resources.map((r) => ({ group: r.group, resource: r.plural, verbs: ['list', 'watch'] as const }));

/**
 * Cluster-wide rules of the watcher: metadata list/watch of every watched resource, and the reconcile API's reviews.
 * A watcher serving several controllers gets the union: list/watch of what any of them watches.
 */
export function watcherClusterRules(
  controller: ControllerSpec | readonly ControllerSpec[],
  options: { tokenReview: boolean },
): PolicyRule[] {
  const watched = (Array.isArray(controller) ? controller : [controller as ControllerSpec]).flatMap((c: ControllerSpec) => [
    c.for,
    ...(c.owns ?? []),
    ...(c.watches ?? []).map((w) => w.resource),
  ]);
  const rules = grouped(reads(watched));
  if (options.tokenReview) {
    rules.push({ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] });
    rules.push({ apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] });
  }
  return rules;
}

/** Rules of the watcher in its own namespace for leader election on exactly these Lease names. */
export function leaseRules(leaseNames: readonly string[]): PolicyRule[] {
  return [
    // A create request carries no name RBAC could check, so create cannot be narrowed to resourceNames.
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [...leaseNames], verbs: ['get', 'update'] },
  ];
}

/** What the built-in autoscaler needs to size a worker Deployment through its scale subresource. */
export function autoscalerRules(deployment: string): PolicyRule[] {
  return [{ apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: [deployment], verbs: ['get', 'patch'] }];
}

/**
 * Cluster-wide rules of the workers (container or Lambda). Workers serving several controllers get the union of each
 * one's rules, rules with the same group and verbs merged: nothing any one of them does not use.
 */
export function workerRules(controller: ControllerSpec | readonly ControllerSpec[]): PolicyRule[] {
  if (Array.isArray(controller)) return mergedRules(controller.flatMap((c: ControllerSpec) => workerRules(c)));
  return controllerWorkerRules(controller as ControllerSpec);
}

/** Rules with the same groups, verbs and resource names merged into one (resources sorted), in the order first seen. */
function mergedRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const merged = new Map<string, PolicyRule>();
  for (const rule of rules) {
    const id = JSON.stringify([rule.apiGroups, rule.verbs, rule.resourceNames ?? null]);
    const into = merged.get(id);
    if (into === undefined) merged.set(id, { ...rule, resources: [...rule.resources] });
    else into.resources = [...new Set([...into.resources, ...rule.resources])].sort();
  }
  return [...merged.values()];
}

function controllerWorkerRules(controller: ControllerSpec): PolicyRule[] {
  const own = controller.for;
  const rules: PolicyRule[] = [
    { apiGroups: [own.group], resources: [own.plural], verbs: ['get', 'patch'] },
    { apiGroups: [own.group], resources: [`${own.plural}/status`], verbs: ['get', 'patch'] },
  ];
  const owned = (controller.owns ?? []).filter((r) => !(r.group === own.group && r.plural === own.plural));
  rules.push(...grouped(owned.map((r) => ({ group: r.group, resource: r.plural, verbs: OWNED_VERBS }))));
  // ctx.events: an Event is created once and its series counted up by patches (events.k8s.io/v1, as client-go's recorder writes).
  rules.push({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] });
  return rules;
}
