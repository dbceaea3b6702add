// The kustomize tree `conveyor build` writes for a controller: a base (namespace, identities, RBAC, config, watcher),
// the container workers, a KEDA component, and the overlays `containers`, `containers-keda`, `lambda` and `sharded`.
//
// Overlays change configuration by adding a second file, `overlay.yaml`, to the `conveyor-config` ConfigMap; every
// process reads the mounted directory (`--config /etc/conveyor`), whose files are merged in name order, so an
// overlay's settings merge into the base's `conveyor.yaml` instead of replacing it.
import { leaseName } from '@conveyor/watcher/run-watcher';
import { Document, isScalar, visit } from 'yaml';
import { deploymentName, type Served, servedControllers } from './deploy-files.ts';
import { autoscalerRules, leaseRules, type PolicyRule, watcherClusterRules, workerRules } from './rbac.ts';
import { dispatcherResources, nodeEnv, watcherResources, workerResources } from './sizing.ts';

export interface ManifestOptions {
  /** The controller, or several served by one deployment (one watcher, one worker Deployment, one function). */
  controller: Served;
  /** Image reference the Dockerfile is built and pushed as, such as `ghcr.io/acme/greetings:0.1.0`. */
  image: string;
  /** @defaultValue conveyor-system */
  namespace: string;
  /** Watcher replicas of the `sharded` overlay, each with `--shard <ordinal>/<shards>`. */
  shards: number;
  /** The deployed Lambda function the dispatcher invokes. */
  functionName: string;
  /** AWS region of the function. */
  region: string;
}

export const CONFIG_DIR = '/etc/conveyor';
const WORKER_DEPLOYMENT = 'conveyor-worker';

/** One object as YAML, lists of plain values on one line (`verbs: [get, patch]`), as people write RBAC by hand. */
function toYaml(body: object): string {
  const doc = new Document(body);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Kubernetes objects as YAML documents, each after its comment lines. */
function yamlDocs(...docs: readonly { comment?: string; body: object }[]): string {
  return docs
    .map(({ comment, body }) => `${comment === undefined ? '' : `${comment.replace(/^/gm, '# ')}\n`}${toYaml(body)}`)
    .join('---\n');
}

/** `ghcr.io/acme/x:1.0` → kustomize's images entry; a reference without a tag gets `latest`. */
function imageEntry(imageName: string, image: string) {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  const tagged = colon > slash;
  return { name: imageName, newName: tagged ? image.slice(0, colon) : image, newTag: tagged ? image.slice(colon + 1) : 'latest' };
}

export function imageName(controller: Served): string {
  return `conveyor-${deploymentName(controller)}`;
}

/** Every file of the tree, by path relative to the manifests directory. */
export function manifestFiles(o: ManifestOptions): Record<string, string> {
  return {
    ...baseFiles(o),
    ...workerFiles(o),
    ...kedaFiles(o),
    ...containersOverlay(o),
    ...kedaOverlay(o),
    ...lambdaOverlay(o),
    ...shardedOverlay(o),
  };
}

function kustomization(comment: string, body: Record<string, unknown>): string {
  return yamlDocs({ comment, body: { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...body } });
}

function overlayKustomization(o: ManifestOptions, comment: string, body: Record<string, unknown>): string {
  return kustomization(comment, { namespace: o.namespace, ...body, images: [imageEntry(imageName(o.controller), o.image)] });
}

const mergeOverlayConfig = { configMapGenerator: [{ name: 'conveyor-config', behavior: 'merge', files: ['overlay.yaml'] }] };

function role(
  kind: 'Role' | 'ClusterRole',
  name: string,
  rules: PolicyRule[],
  o: ManifestOptions,
  subject: string,
  comment: string,
): string {
  const binding = kind === 'Role' ? 'RoleBinding' : 'ClusterRoleBinding';
  return yamlDocs(
    { comment, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: { name }, rules } },
    {
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: binding,
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
        subjects: [{ kind: 'ServiceAccount', name: subject, namespace: o.namespace }],
      },
    },
  );
}

function baseFiles(o: ManifestOptions): Record<string, string> {
  const c = o.controller;
  const name = deploymentName(c);
  const names = servedControllers(c).map((s) => s.name);
  return {
    'base/kustomization.yaml': kustomization(
      `Conveyor base for the ${names.join(', ')} controller${names.length === 1 ? '' : 's'}: namespace, service accounts, least-privilege RBAC, configuration and the watcher.\nApply an overlay, not this: containers, containers-keda, lambda or sharded.`,
      {
        namespace: o.namespace,
        labels: [{ pairs: { 'app.kubernetes.io/part-of': `conveyor-${name}` }, includeSelectors: false }],
        resources: ['namespace.yaml', 'service-accounts.yaml', 'rbac-watcher.yaml', 'rbac-worker.yaml', 'watcher.yaml'],
        configMapGenerator: [{ name: 'conveyor-config', files: ['conveyor.yaml'] }],
        images: [imageEntry(imageName(c), o.image)],
      },
    ),
    'base/namespace.yaml': yamlDocs({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.namespace } } }),
    'base/service-accounts.yaml': yamlDocs(
      { comment: 'One identity per role, so each gets only the rights it uses.', body: serviceAccount('conveyor-watcher') },
      { body: serviceAccount('conveyor-worker') },
    ),
    'base/rbac-watcher.yaml': [
      role(
        'ClusterRole',
        `conveyor-${name}-watcher`,
        watcherClusterRules(c, { tokenReview: true }),
        o,
        'conveyor-watcher',
        'The watcher reads metadata (list/watch) of the controller’s resource, its children and mapped objects, and checks\ncallers of POST /v1/reconcile with TokenReview + SubjectAccessReview. Derived from the controller by `conveyor build`.',
      ),
      role(
        'Role',
        'conveyor-watcher',
        leaseRules([leaseName(names, undefined)]),
        o,
        'conveyor-watcher',
        'In its own namespace only: the leader-election Lease of an unsharded watcher.',
      ),
    ].join('---\n'),
    'base/rbac-worker.yaml': role(
      'ClusterRole',
      `conveyor-${name}-worker`,
      workerRules(c),
      o,
      'conveyor-worker',
      'Workers (container or Lambda) read and patch the controller’s resource and its status, use the kinds it owns, and\nrecord Events. No list or watch: they fetch each object by name. Derived from the controller by `conveyor build`.',
    ),
    'base/watcher.yaml': watcherDeployment(o),
    'base/conveyor.yaml': baseConfig(o),
  };
}

function serviceAccount(name: string, annotations?: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, ...(annotations === undefined ? {} : { annotations }) } };
}

function baseConfig(o: ManifestOptions): string {
  return `# Conveyor configuration shared by the watcher, the workers and the dispatcher (\`conveyor config --config <dir>\` prints it).
# Overlays add overlay.yaml beside it; files in ${CONFIG_DIR} are merged in name order, so their settings win key by key.
# Environment variables override both: CONVEYOR_<SECTION>__<KEY>, e.g. CONVEYOR_REDIS__URL.
redis:
  # Bring your own Redis 7.0 or later (with persistence, or accept a relist after a restart: Conveyor detects the loss).
  url: redis://redis.${o.namespace}.svc:6379
kube:
  inCluster: true
queue:
  attempts: 15
  backoff:
    base: 200ms
    max: 1000s
  lockDuration: 30s
  stalledInterval: 30s
worker:
  concurrency: 10
  shutdownGrace: 30s
apiBudget:
  qps: 50
  burst: 100
watcher:
  pageSize: 500
  resyncPeriod: 10h
  leaderElect: true
  leaseNamespace: ${o.namespace}
http:
  port: 8080
api:
  # POST /v1/reconcile: callers' Kubernetes tokens, checked with TokenReview + SubjectAccessReview (update on the object).
  tokenReview: true
`;
}

/** Non-root (the node image's `node` user, by number so runAsNonRoot can check it), read-only, no capabilities. */
const podSecurity = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } };
const containerSecurity = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
const configVolume = { volumes: [{ name: 'config', configMap: { name: 'conveyor-config' } }] };
const configMount = { volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }] };

interface PodOptions {
  app: string;
  serviceAccount: string;
  args: string[];
  probes: Record<string, unknown>;
  resources: Record<string, unknown>;
  extra?: Record<string, unknown>;
  container?: Record<string, unknown>;
}

function podTemplate(o: ManifestOptions, p: PodOptions) {
  return {
    metadata: { labels: { 'app.kubernetes.io/name': p.app } },
    spec: {
      serviceAccountName: p.serviceAccount,
      ...p.extra,
      securityContext: podSecurity,
      containers: [
        {
          name: p.app.replace(/^conveyor-/, ''),
          image: imageName(o.controller),
          args: p.args,
          ...p.container,
          // The heap settings the resources below were measured with (sizing.ts).
          env: [...nodeEnv, ...((p.container?.env as unknown[] | undefined) ?? [])],
          ports: [{ name: 'http', containerPort: 8080 }],
          ...p.probes,
          resources: p.resources,
          securityContext: containerSecurity,
          ...configMount,
        },
      ],
      ...configVolume,
    },
  };
}

function service(app: string) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: app, labels: { 'app.kubernetes.io/name': app } },
    spec: { selector: { 'app.kubernetes.io/name': app }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
  };
}

const watcherProbes = {
  // Ready once the active replica's first list is synced; a standby is ready too (for taking over).
  readinessProbe: { httpGet: { path: '/readyz', port: 'http' } },
  livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 20 },
};

function watcherDeployment(o: ManifestOptions): string {
  const app = 'conveyor-watcher';
  const template = podTemplate(o, {
    app,
    serviceAccount: 'conveyor-watcher',
    args: ['watch', '--config', CONFIG_DIR],
    probes: watcherProbes,
    resources: watcherResources,
  });
  return yamlDocs(
    {
      comment:
        'The watcher: metadata-only list+watch into the queue, /metrics, /healthz and POST /v1/reconcile.\nTwo replicas with leader election; the standby takes over within the lease duration.',
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: app },
        spec: { replicas: 2, selector: { matchLabels: { 'app.kubernetes.io/name': app } }, template },
      },
    },
    { body: service(app) },
  );
}

function workerFiles(o: ManifestOptions): Record<string, string> {
  const app = WORKER_DEPLOYMENT;
  const template = podTemplate(o, {
    app,
    serviceAccount: 'conveyor-worker',
    args: ['worker', '--config', CONFIG_DIR],
    probes: { readinessProbe: { httpGet: { path: '/healthz', port: 'http' } } },
    resources: workerResources,
    // Longer than worker.shutdownGrace, so running reconciles finish before the kubelet kills the pod.
    extra: { terminationGracePeriodSeconds: 45 },
  });
  return {
    'workers/kustomization.yaml': kustomization(
      'The container worker Deployment, shared by the containers, containers-keda and sharded overlays.',
      {
        resources: ['worker.yaml'],
      },
    ),
    'workers/worker.yaml': yamlDocs(
      {
        comment: 'Container workers: stateless, sized by the autoscaler or KEDA (replicas here is only the starting point).',
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: app },
          spec: { replicas: 1, selector: { matchLabels: { 'app.kubernetes.io/name': app } }, template },
        },
      },
      { body: service(app) },
    ),
  };
}

function kedaFiles(o: ManifestOptions): Record<string, string> {
  const names = servedControllers(o.controller).map((c) => c.name);
  // Several controllers share the worker Deployment: it needs the most any of them wants.
  const selector = names.length === 1 ? `controller="${names[0]}"` : `controller=~"${names.join('|')}"`;
  const prometheus = 'http://prometheus-operated.monitoring.svc:9090';
  return {
    'components/keda/kustomization.yaml': yamlDocs({
      comment:
        'KEDA ScaledObject on the watcher’s exported gauges, read from Prometheus. Not KEDA’s redis list trigger: BullMQ keeps\nprioritized and delayed jobs in sorted sets that a list-length trigger cannot see.',
      body: { apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component', resources: ['scaledobject.yaml'] },
    }),
    'components/keda/scaledobject.yaml': yamlDocs({
      comment: 'The leading watcher exports conveyor_desired_workers and conveyor_backlog whether or not its own autoscaler acts.',
      body: {
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { name: WORKER_DEPLOYMENT },
        spec: {
          scaleTargetRef: { name: WORKER_DEPLOYMENT },
          minReplicaCount: 0,
          maxReplicaCount: 20,
          cooldownPeriod: 1800,
          advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } } },
          triggers: [
            // The watcher's own decision (backlog, reconcile duration and API budget folded in).
            {
              type: 'prometheus',
              metadata: {
                serverAddress: prometheus,
                query: `max(conveyor_desired_workers{${selector}})`,
                threshold: '1',
                activationThreshold: '0',
              },
            },
            // Raw backlog as a floor: one worker (10 slots) per 100 waiting requests.
            {
              type: 'prometheus',
              metadata: {
                serverAddress: prometheus,
                query: `max(conveyor_backlog{${selector}})`,
                threshold: '100',
                activationThreshold: '0',
              },
            },
          ],
        },
      },
    }),
  };
}

function containersOverlay(o: ManifestOptions): Record<string, string> {
  return {
    'overlays/containers/kustomization.yaml': overlayKustomization(
      o,
      'Container workers sized by the watcher’s built-in autoscaler through the Deployment’s scale subresource (no KEDA needed).',
      { resources: ['../../base', '../../workers', 'rbac-autoscaler.yaml'], ...mergeOverlayConfig },
    ),
    'overlays/containers/rbac-autoscaler.yaml': role(
      'Role',
      'conveyor-autoscaler',
      autoscalerRules(WORKER_DEPLOYMENT),
      o,
      'conveyor-watcher',
      'The watcher’s autoscaler reads and patches the worker Deployment’s scale subresource, in this namespace only.',
    ),
    'overlays/containers/overlay.yaml': `# Merged over the base's conveyor.yaml: the autoscaler sizes ${WORKER_DEPLOYMENT} toward a 30 s queue latency.
autoscaler:
  enabled: true
  target: deployment
  deployment: ${o.namespace}/${WORKER_DEPLOYMENT}
  minWorkers: 1
  maxWorkers: 20
  latencyTarget: 30s
  interval: 15s
  scaleDownStabilization: 5m
  idleToZero: 30m
`,
  };
}

function kedaOverlay(o: ManifestOptions): Record<string, string> {
  return {
    'overlays/containers-keda/kustomization.yaml': overlayKustomization(
      o,
      'Container workers scaled by KEDA on the watcher’s exported gauges; the built-in autoscaler stays off (the base’s setting).',
      { resources: ['../../base', '../../workers'], components: ['../../components/keda'] },
    ),
  };
}

function lambdaOverlay(o: ManifestOptions): Record<string, string> {
  const app = 'conveyor-dispatcher';
  const template = podTemplate(o, {
    app,
    serviceAccount: app,
    args: ['dispatch', '--function', o.functionName, '--config', CONFIG_DIR],
    probes: { readinessProbe: { httpGet: { path: '/healthz', port: 'http' } } },
    resources: dispatcherResources,
    extra: { automountServiceAccountToken: false, terminationGracePeriodSeconds: 60 },
    container: { env: [{ name: 'AWS_REGION', value: o.region }] },
  });
  return {
    'overlays/lambda/kustomization.yaml': overlayKustomization(
      o,
      'Reconciles run in AWS Lambda: the in-cluster dispatcher takes requests from the queue and invokes the function;\nthe watcher’s autoscaler turns the dispatcher’s concurrency. IAM and networking: docs/deploying-to-lambda.md.',
      { resources: ['../../base', 'dispatcher.yaml'], ...mergeOverlayConfig },
    ),
    'overlays/lambda/dispatcher.yaml': yamlDocs(
      {
        comment:
          'The dispatcher needs no Kubernetes rights: it reads Redis and calls lambda:InvokeFunction, with AWS credentials from\nIRSA / EKS Pod Identity on this ServiceAccount (set the role ARN).',
        body: serviceAccount(app, { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/conveyor-dispatcher' }),
      },
      {
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: app },
          spec: { replicas: 1, selector: { matchLabels: { 'app.kubernetes.io/name': app } }, template },
        },
      },
      { body: service(app) },
    ),
    'overlays/lambda/overlay.yaml': `# Merged over the base's conveyor.yaml: the autoscaler drives the dispatcher's concurrency (one slot per in-flight invocation).
worker:
  concurrency: 50
lambda:
  functionName: ${o.functionName}
  region: ${o.region}
  # serverless.yml's timeout: the dispatcher waits this long plus a margin for an invocation.
  functionTimeout: 30s
autoscaler:
  enabled: true
  target: dispatcher
  minWorkers: 1
  maxWorkers: 200
  latencyTarget: 30s
`,
  };
}

/** The Lease names of the sharded overlay's watchers: one per shard. */
export function shardLeaseNames(controller: Served, shards: number): string[] {
  const names = servedControllers(controller).map((c) => c.name);
  return Array.from({ length: shards }, (_, index) => leaseName(names, { index, count: shards }));
}

function shardedOverlay(o: ManifestOptions): Record<string, string> {
  const app = 'conveyor-watcher';
  const template = podTemplate(o, {
    app,
    serviceAccount: 'conveyor-watcher',
    // `ordinal` is read from the pod's host name (conveyor-watcher-2 → 2).
    args: ['watch', '--config', CONFIG_DIR, '--shard', `ordinal/${o.shards}`],
    probes: watcherProbes,
    resources: watcherResources,
  });
  return {
    'overlays/sharded/kustomization.yaml': overlayKustomization(
      o,
      `Watchers sharded ${o.shards} ways (a StatefulSet, one shard per ordinal, each with its own Lease) instead of the base’s\nDeployment; container workers scaled by KEDA from the backlog shard 0 exports (the one shard that runs the autoscaler).`,
      {
        resources: ['../../base', '../../workers', 'watcher-shards.yaml', 'rbac-shards.yaml'],
        components: ['../../components/keda'],
        patches: [{ patch: yamlDocs({ body: { $patch: 'delete', apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: app } } }) }],
      },
    ),
    'overlays/sharded/watcher-shards.yaml': yamlDocs({
      comment: `${o.shards} watcher shards; with leader election (the base's setting) each also holds its shard's Lease.`,
      body: {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: app },
        spec: {
          serviceName: app,
          replicas: o.shards,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: { 'app.kubernetes.io/name': app } },
          template,
        },
      },
    }),
    'overlays/sharded/rbac-shards.yaml': role(
      'Role',
      'conveyor-watcher-shards',
      leaseRules(shardLeaseNames(o.controller, o.shards)),
      o,
      'conveyor-watcher',
      'The Lease of each shard (conveyor-<controller>-watcher-<i>-of-<n>), in the watcher’s namespace only.',
    ),
  };
}
