// The Greeting controller: keeps one ConfigMap per Greeting holding its spec.message, reports it in status,
// and removes it through a finalizer when the Greeting is deleted.
import { type Condition, defineController, type KubeObject, setCondition, TerminalError } from 'kube-conveyor';

export interface Greeting extends KubeObject {
  spec?: { message?: string };
  status?: { observedGeneration?: number; configMap?: string; conditions?: Condition[] };
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export const GREETINGS = { group: 'example.com', version: 'v1', plural: 'greetings' };
const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };

/** The ConfigMap a Greeting owns. */
export function childName(name: string): string {
  return `${name}-greeting`;
}

export default defineController<Greeting>({
  name: 'greetings',
  for: { group: 'example.com', version: 'v1', plural: 'greetings', kind: 'Greeting' },
  // An edit or delete of an owned ConfigMap reconciles the Greeting that controls it.
  owns: [{ ...CONFIGMAPS, kind: 'ConfigMap' }],
  finalizer: 'example.com/cleanup',

  async reconcile(object, ctx) {
    const { name, namespace = 'default', generation = 0 } = object.metadata;
    const message = object.spec?.message;
    // Retrying cannot fix a missing message: the request is parked with this reason (conveyor status shows it).
    if (message === undefined || message === '') throw new TerminalError('spec.message is required');
    const child = { ...CONFIGMAPS, namespace, name: childName(name) };
    const existing = await ctx.client.find<ConfigMap>(child);
    if (existing === undefined) {
      // ctx.own: a controller ownerReference to this Greeting, so the ConfigMap goes when it does.
      await ctx.client.create<ConfigMap>(
        CONFIGMAPS,
        ctx.own({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: child.name, namespace }, data: { message } }),
      );
      // An Event about the Greeting: `kubectl describe` and `kubectl events` show it.
      ctx.events.normal('ConfigMapCreated', `created ConfigMap ${child.name}`);
    } else if (existing.data?.message !== message) {
      // Guarded by the resourceVersion read: a stale write fails with 409 and the request is retried.
      await ctx.client.patch(child, {
        type: 'merge',
        body: { metadata: { resourceVersion: existing.metadata.resourceVersion }, data: { message } },
      });
    }
    // Collected and written once after reconcile returns, and only when it changes something.
    ctx.patchStatus({
      observedGeneration: generation,
      configMap: child.name,
      conditions: setCondition(object.status?.conditions, {
        type: 'Ready',
        status: 'True',
        reason: 'ConfigMapReady',
        message: `ConfigMap ${child.name} holds the message`,
        observedGeneration: generation,
      }),
    });
  },

  // Runs once the Greeting is being deleted; the finalizer is removed only after it resolves. It stands in for
  // cleaning up what lives outside Kubernetes (the owned ConfigMap would also go by garbage collection).
  async finalize(object, ctx) {
    const { name, namespace = 'default' } = object.metadata;
    await ctx.client.delete({ ...CONFIGMAPS, namespace, name: childName(name) });
  },
});
