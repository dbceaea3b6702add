// Samples of docs/concepts.md: selectors, predicates (built-in and your own), owned children, mapped watches, finalizers.
import { dataKeys, defineController, type KubeObject } from 'kube-conveyor';

interface Site extends KubeObject {
  spec?: { theme?: string };
}

// --- controller ---
export default defineController<Site>({
  name: 'sites',
  for: { group: 'example.com', version: 'v1', plural: 'sites', kind: 'Site' },
  // Narrow the watch on the server: only these objects are listed, watched and tracked.
  selector: { labels: 'tier in (gold,silver)', fields: 'metadata.namespace!=kube-system' },
  // Which updates enqueue; creation, deletion and finalizer changes always do.
  predicates: ['generation', 'labels', { name: 'owner-annotation', changed: (meta) => meta.annotations?.['example.com/owner'] }],
  // Child Deployments whose controller ownerReference points at a Site reconcile that Site: only those
  // labelled as made by this controller are watched, and only a spec change or a new `ready` annotation counts.
  owns: [
    {
      group: 'apps',
      version: 'v1',
      plural: 'deployments',
      kind: 'Deployment',
      labels: 'app.kubernetes.io/managed-by=sites',
      predicates: ['generation', { name: 'ready', changed: (meta) => meta.annotations?.['example.com/ready'] }],
    },
  ],
  // Theme ConfigMaps: an edit of one's `theme` key reconciles the Sites whose `example.com/theme` label
  // names it (found through the watcher's index of that label); any other edit enqueues nothing.
  watches: [
    {
      resource: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
      labels: 'example.com/is-theme=true',
      index: { label: 'example.com/theme' },
      changed: dataKeys(['theme']),
    },
  ],
  finalizer: 'example.com/dns-record',

  async reconcile(site, ctx) {
    ctx.log.info({ theme: site.spec?.theme }, 'reconciling');
  },
  async finalize(site, ctx) {
    // Idempotent: it may run more than once. Our finalizer is removed only after it resolves.
    ctx.log.info({ site: site.metadata.name }, 'removing the DNS record');
  },
});
// --- end controller ---
