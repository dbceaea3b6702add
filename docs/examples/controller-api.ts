// Samples of docs/getting-started.md's "More of the controller API": long cleanup, Events, cancellation, an error policy, Flux's manual reconcile, owned children.
import { defineController, type KubeObject, requeueAfter } from 'kube-conveyor';

interface Bucket extends KubeObject {
  spec?: { region?: string };
  status?: { observedGeneration?: number; lastHandledReconcileAt?: string };
}

/** What the controller's cloud client answers; a stand-in for a real SDK. */
interface Cloud {
  ensureBucket(name: string, region: string, signal: AbortSignal): Promise<'created' | 'exists'>;
  deleteBucket(name: string): Promise<'deleting' | 'gone'>;
}

/** The cloud asked us to slow down, and said for how long. */
class SlowDownError extends Error {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(`slow down for ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

declare const cloud: Cloud;

// --- controller ---
export default defineController<Bucket>({
  name: 'buckets',
  for: { group: 'example.com', version: 'v1', plural: 'buckets', kind: 'Bucket' },
  owns: [{ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' }],
  finalizer: 'example.com/bucket',
  // `flux reconcile` and `conveyor enqueue --annotate` see their request answered here (declare it in the CRD).
  lastHandledReconcileAt: true,

  async reconcile(bucket, ctx) {
    const name = bucket.metadata.name;
    // ctx.signal fires at the reconcile's timeout; ctx.client's own calls are already cancelled with it.
    const result = await cloud.ensureBucket(name, bucket.spec?.region ?? 'eu-west-1', ctx.signal);
    if (result === 'created') ctx.events.normal('BucketCreated', `bucket ${name} created`);
    // ctx.own: a controller ownerReference to this Bucket, so garbage collection deletes the child with it.
    await ctx.client.apply(
      ctx.own({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${name}-bucket`, namespace: bucket.metadata.namespace ?? 'default' },
        data: { url: `s3://${name}` },
      }),
      { force: true },
    );
    ctx.patchStatus({ observedGeneration: bucket.metadata.generation ?? 0 });
  },

  // Started but not finished: look again in 30 s. No attempt is spent and the finalizer stays; past
  // finalizeDeadline the request is parked with its reason for `conveyor status` to show.
  async finalize(bucket, ctx) {
    if ((await cloud.deleteBucket(bucket.metadata.name)) === 'deleting') {
      ctx.events.normal('BucketDeleting', 'waiting for the cloud to delete the bucket');
      return requeueAfter('30s');
    }
    return undefined;
  },
  finalizeDeadline: '2h',

  // The delay before retrying a failed reconcile: what the error says, else the default per-key backoff.
  errorPolicy(error) {
    if (error instanceof SlowDownError) return error.retryAfterSeconds * 1_000;
    return undefined;
  },
});
// --- end ---
