// The controller of docs/getting-started.md: a Greeting custom resource that owns one ConfigMap holding its message.
import type { KubeObject } from '@conveyor/shared';
import { defineController, requeueAfter, TerminalError } from '@conveyor/workers';

// --- types ---
export interface Greeting extends KubeObject {
  spec?: { name?: string; language?: 'en' | 'fr' };
  status?: { observedGeneration?: number; message?: string };
}

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
// --- end types ---

// --- controller ---
export default defineController<Greeting>({
  name: 'greetings',
  for: { group: 'example.com', version: 'v1', plural: 'greetings', kind: 'Greeting' },
  // Owned ConfigMaps: an edit or delete of one reconciles the Greeting that controls it.
  owns: [{ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' }],

  async reconcile(greeting, ctx) {
    const { name, namespace = 'default', uid = '', generation = 0 } = greeting.metadata;
    const who = greeting.spec?.name;
    if (who === undefined || who === '') throw new TerminalError('spec.name is required'); // parked, not retried
    const message = greeting.spec?.language === 'fr' ? `Bonjour, ${who} !` : `Hello, ${who}!`;

    const child = { ...CONFIGMAPS, namespace, name: `${name}-greeting` };
    const existing = await ctx.client.find<KubeObject & { data?: Record<string, string> }>(child);
    if (existing === undefined) {
      await ctx.client.create(CONFIGMAPS, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: child.name,
          namespace,
          ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Greeting', name, uid, controller: true }],
        },
        data: { message },
      });
    } else if (existing.data?.message !== message) {
      // Guarded by the resourceVersion we read: a stale write fails with 409 and the request is retried.
      await ctx.client.patch(child, {
        type: 'merge',
        body: { metadata: { resourceVersion: existing.metadata.resourceVersion }, data: { message } },
      });
    }

    // Collected and written once after reconcile returns, and only if it changed something.
    ctx.patchStatus({ observedGeneration: generation, message });
    return requeueAfter('10m'); // or return nothing: done
  },
});
// --- end controller ---
