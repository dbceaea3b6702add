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
  // Child Deployments whose controller ownerReference points at a Site reconcile that Site.
  owns: [{ group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' }],
  // One shared ConfigMap mapped to the Sites it names; only an edit of its `theme` key enqueues them.
  watches: [
    {
      resource: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
      fields: 'metadata.name=site-themes',
      map: (cm) =>
        (cm.metadata?.annotations?.['example.com/sites'] ?? '')
          .split(',')
          .filter(Boolean)
          .map((name) => ({ name })),
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
