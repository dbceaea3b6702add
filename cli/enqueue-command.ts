// `conveyor enqueue`: asks for reconciles of one object, or of every object a label selector matches, through the same enqueue as watch events.
import {
  createKubeConfig,
  type EnqueueRequest,
  formatKey,
  InvalidArgumentError,
  InvalidKeyError,
  KubeApiClient,
  keyOf,
  type ObjectKey,
  REQUESTED_AT_ANNOTATIONS,
  type RequestReason,
  type ResourceRef,
  redisEndpoint,
  validateObjectName,
} from '@conveyor/shared';
import { COMMON_FLAGS, type Command, EXIT, type Flags, parseFlags, UsageError } from './command.ts';
import { resourceNames } from './controller-process.ts';
import { openControllerQueue } from './controller-queue.ts';

const PRIORITIES: Record<string, RequestReason> = { high: 'event', normal: 'manual', low: 'resync' };
const PAGE = 500;

const FLAGS = {
  controller: COMMON_FLAGS.controllers,
  name: COMMON_FLAGS.name,
  config: COMMON_FLAGS.config,
  selector: {
    type: 'string',
    short: 'l',
    value: '<labels>',
    description: 'enqueue every object this label selector matches, instead of one by name',
    defaultText: 'none: one object by name',
  },
  namespace: {
    type: 'string',
    short: 'n',
    value: '<ns>',
    description: 'the namespace of a bare <name> or of --selector',
    defaultText: 'default',
  },
  'all-namespaces': { type: 'boolean', short: 'A', description: '--selector in every namespace' },
  priority: {
    type: 'string',
    value: 'high|normal|low',
    description: 'as a fresh event (high), a manual request (normal) or a resync (low)',
    defaultText: 'normal',
  },
  annotate: {
    type: 'boolean',
    description:
      'the Flux way: write reconcile.fluxcd.io/requestedAt (the time) on each object, as `flux reconcile` does, instead of enqueueing; the watcher sees the change and enqueues, and a controller with lastHandledReconcileAt writes the value it handled to status',
  },
  timeout: COMMON_FLAGS.timeout,
} as const satisfies Flags;

/** The field manager of `--annotate`'s writes. */
const ANNOTATE_MANAGER = 'conveyor-enqueue';

export const enqueueCommand: Command = {
  name: 'enqueue',
  summary: 'ask for a reconcile of objects by name or selector',
  usage:
    'conveyor enqueue <resource> (<namespace>/<name> | <name> | --selector <labels> [--namespace <ns> | --all-namespaces]) [--priority high|normal|low | --annotate] [--controller <module> …] [--name <controller>] [--config <file>] [--timeout <duration>]',
  flags: FLAGS,
  positionals: {
    '<resource>': 'the controller’s resource: widgets, widgets.example.com or widgets.v1.example.com',
    '<namespace>/<name>': 'one object (a bare <name> takes --namespace, or none for a cluster-scoped resource)',
  },
  async run(args, io) {
    const { values, positionals } = parseFlags(args, FLAGS, true);
    const [resource, target, ...extra] = positionals;
    if (resource === undefined) throw new UsageError('missing <resource>, such as widgets or widgets.example.com');
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (target !== undefined && values.selector !== undefined) throw new UsageError('give an object name or --selector, not both');
    if (target === undefined && values.selector === undefined) throw new UsageError('missing <namespace>/<name> or --selector <labels>');
    if (values.namespace !== undefined && values['all-namespaces'] === true)
      throw new UsageError('--namespace and --all-namespaces exclude each other');
    if (values.annotate === true && values.priority !== undefined) {
      throw new UsageError('--priority does not apply with --annotate: the watcher enqueues the change as an event');
    }
    const reason = PRIORITIES[values.priority ?? 'normal'];
    if (reason === undefined) throw new UsageError(`--priority must be high, normal or low, got "${values.priority}"`);

    // Among several controllers, the one reconciling <resource> (or --name's).
    const { config, controller, queue, deadline } = await openControllerQueue(values, io, { resource });
    const redis = redisEndpoint(config.redis);
    try {
      const ref = controller.for;
      const names = new Set(resourceNames(controller));
      if (!names.has(resource)) {
        throw new InvalidArgumentError(`unknown resource "${resource}": controller "${controller.name}" reconciles ${[...names][1]}`);
      }
      const namespaced = controller.for.namespaced ?? true;

      // The API server only when needed: enqueueing one object by name needs Redis alone.
      let kube: { client: KubeApiClient; apiServer: string } | undefined;
      const api = () => {
        if (kube !== undefined) return kube;
        const kubeConfig = createKubeConfig(config.kube);
        const client = new KubeApiClient({ kubeConfig, fieldManager: ANNOTATE_MANAGER });
        kube = { client, apiServer: `the API server at ${kubeConfig.getCurrentCluster()?.server ?? '?'}` };
        return kube;
      };
      // One requestedAt value for the whole run, as `flux reconcile` writes it: the time.
      const requestedAt = new Date().toISOString();
      const annotate = (key: ObjectKey) =>
        deadline.wait(api().apiServer, (signal) =>
          api()
            .client.withSignal(signal)
            .patch(key, {
              type: 'merge',
              body: { metadata: { annotations: { [REQUESTED_AT_ANNOTATIONS.flux]: requestedAt } } },
            }),
        );

      if (target !== undefined) {
        const key = keyFromTarget(ref, namespaced, target, values.namespace);
        if (values.annotate === true) {
          await annotate(key);
          io.out(`annotated ${formatKey(key)} with ${REQUESTED_AT_ANNOTATIONS.flux}=${requestedAt}; the watcher enqueues it`);
          return EXIT.ok;
        }
        await deadline.wait(redis, () => queue.enqueue({ key, reason }));
        io.out(`enqueued ${formatKey(key)} (${values.priority ?? 'normal'} priority)`);
        return EXIT.ok;
      }

      // Many objects: list names page by page (no object is kept), enqueue (or annotate) each page.
      const namespace = !namespaced || values['all-namespaces'] === true ? '' : (values.namespace ?? 'default');
      const progress = process.stderr.isTTY ? (n: number) => process.stderr.write(`\renqueued ${n} …`) : () => {};
      let total = 0;
      let continueToken: string | undefined;
      do {
        const page = await deadline.wait(api().apiServer, (signal) =>
          api()
            .client.withSignal(signal)
            .list(ref, namespace, {
              labelSelector: values.selector ?? '',
              limit: PAGE,
              ...(continueToken === undefined ? {} : { continue: continueToken }),
            }),
        );
        const requests: EnqueueRequest[] = page.items.map((item) => ({
          key: keyOf(ref, item),
          reason,
        }));
        if (values.annotate === true) for (const request of requests) await annotate(request.key);
        else await deadline.wait(redis, () => queue.enqueueBatch(requests));
        total += requests.length;
        progress(total);
        continueToken = page.metadata.continue || undefined;
      } while (continueToken !== undefined);
      if (process.stderr.isTTY) process.stderr.write('\n');
      io.out(
        `${values.annotate === true ? `annotated (${REQUESTED_AT_ANNOTATIONS.flux}=${requestedAt})` : 'enqueued'} ${total} ${ref.plural} matching "${values.selector}" in ${namespace === '' ? 'all namespaces' : `namespace ${namespace}`}`,
      );
      return EXIT.ok;
    } finally {
      await queue.close();
    }
  },
};

export function keyFromTarget(ref: ResourceRef, namespaced: boolean, target: string, flagNamespace: string | undefined): ObjectKey {
  const slash = target.indexOf('/');
  let namespace = slash === -1 ? (flagNamespace ?? (namespaced ? 'default' : '')) : target.slice(0, slash);
  const name = slash === -1 ? target : target.slice(slash + 1);
  if (!namespaced) {
    if (slash !== -1) throw new InvalidArgumentError(`"${target}": the resource is cluster-scoped; give just <name>`);
    namespace = '';
  }
  const key = keyOf(ref, { namespace, name });
  try {
    // The resource's own naming rule: a name no object can have would only cost a worker a GET.
    validateObjectName(key);
  } catch (error) {
    if (error instanceof InvalidKeyError) throw new InvalidArgumentError(`"${target}" is not an object name: ${error.message}`);
    throw error;
  }
  return key;
}
