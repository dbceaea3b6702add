// The example Widget controller: one child ConfigMap per Widget, observedGeneration and a Ready condition, an external record removed by finalize, and a shared palette ConfigMap.

import {
  type ApplyObject,
  type Config,
  closeRedisConnection,
  createRedisConnection,
  dataKeys,
  formatKey,
  KubeApiError,
  type KubeObject,
  type Logger,
  type StoredObject,
  type TargetRef,
  TerminalError,
} from '@conveyor/shared';
import { type Condition, condition, defineController } from '@conveyor/workers';
import { ExampleRecords } from './example-records.ts';

export interface WidgetSpec {
  color?: string;
  size?: number;
  /** Name of a palette ConfigMap in the Widget's namespace whose `palette` key the child copies. */
  paletteFrom?: string;
}

export interface WidgetStatus {
  observedGeneration?: number;
  configMap?: string;
  conditions?: Condition[];
}

export interface Widget extends KubeObject {
  spec?: WidgetSpec;
  status?: WidgetStatus;
}

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export interface WidgetDeps {
  records: ExampleRecords;
  now: () => Date;
  close: () => Promise<void>;
}

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
export const WIDGET_FINALIZER = 'example.com/external-record';
/** Marks the ConfigMaps this controller made: its child watch selects only these. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'conveyor-widgets';
/** Marks a ConfigMap as a palette that Widgets may share; only such ConfigMaps are watched in full. */
export const PALETTE_LABEL = 'example.com/palette';
/**
 * On a palette ConfigMap: the names of the Widgets that use it, comma-separated. The watcher keeps no
 * Widget specs, so the map from a palette to its dependents must be readable from the palette itself.
 */
export const DEPENDENTS_ANNOTATION = 'example.com/dependents';

/** The Widgets a palette ConfigMap names as its dependents (same namespace). */
export function paletteDependents(configMap: KubeObject): TargetRef[] {
  const listed = configMap.metadata?.annotations?.[DEPENDENTS_ANNOTATION] ?? '';
  return listed
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
    .map((name) => ({ name }));
}

/** The child ConfigMap's name for a Widget. */
export function childName(widget: { metadata: { name: string } }): string {
  return `${widget.metadata.name}-widget`;
}

/** The child ConfigMap as this controller applies it: labelled as ours, controlled by the Widget, with the Widget's data. */
export function childConfigMap(widget: StoredObject<Widget>, palette?: ConfigMap): ApplyObject<ConfigMap> {
  const { metadata } = widget;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: childName(widget),
      namespace: metadata.namespace ?? '',
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      ownerReferences: [
        {
          apiVersion: widget.apiVersion ?? 'example.com/v1',
          kind: widget.kind ?? 'Widget',
          name: metadata.name,
          uid: metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: childData(widget, palette),
  };
}

/** The API server refused a second controller reference: the ConfigMap belongs to another object. */
function isOwnedByOther(error: unknown): boolean {
  return (
    error instanceof KubeApiError &&
    error.statusCode === 422 &&
    (error.details?.causes ?? []).some((c) => c.field === 'metadata.ownerReferences')
  );
}

/** What the child ConfigMap holds: the Widget's spec, as strings, and its palette when it uses one. */
export function childData(widget: Widget, palette?: ConfigMap): Record<string, string> {
  const data = { color: widget.spec?.color ?? '', size: String(widget.spec?.size ?? 0) };
  return widget.spec?.paletteFrom === undefined ? data : { ...data, palette: palette?.data?.palette ?? '' };
}

/**
 * The controller's own Redis connection, made with Conveyor's factory so an outage is logged as one
 * JSON line per retry interval (never a raw stack) and closing never waits on an unreachable Redis.
 */
export function connectRecords(config: Config, logger: Logger): WidgetDeps {
  const redis = createRedisConnection(config.redis, { logger, purpose: 'example records' });
  return {
    records: new ExampleRecords(redis, config.redis.prefix),
    now: () => new Date(),
    close: () => closeRedisConnection(redis),
  };
}

export default defineController<Widget, WidgetDeps>({
  name: 'widgets',
  for: { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' },
  predicates: ['generation'],
  // Only the ConfigMaps this controller made (it labels them), not every ConfigMap in the cluster.
  owns: [{ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', labels: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }],
  // An edit of a palette's `palette` key reconciles its dependents; an edit of anything else in it enqueues nothing.
  watches: [
    {
      resource: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
      labels: `${PALETTE_LABEL}=true`,
      map: paletteDependents,
      changed: dataKeys(['palette']),
    },
  ],
  finalizer: WIDGET_FINALIZER,

  setup: ({ config, logger }) => connectRecords(config, logger),

  async reconcile(widget, ctx) {
    const { metadata } = widget;
    const namespace = metadata.namespace ?? '';
    // The external record first: finalize removes it, and our finalizer is on the object by now.
    await ctx.deps.records.put(formatKey(ctx.key), metadata.uid ?? '');

    const name = childName(widget);
    const paletteFrom = widget.spec?.paletteFrom;
    const palette =
      paletteFrom === undefined ? undefined : await ctx.client.find<ConfigMap>({ ...CONFIGMAPS, namespace, name: paletteFrom });
    const ready = (status: 'True' | 'False', reason: string, message: string) =>
      condition(
        widget.status?.conditions,
        { type: 'Ready', status, reason, message, observedGeneration: metadata.generation ?? 0 },
        ctx.deps.now,
      );
    try {
      // One request whether the child exists or not, and none of it read first. `force`: this
      // controller is the authority over its child, so someone else's edit of the data is undone.
      await ctx.client.apply<ConfigMap>(childConfigMap(widget, palette), { force: true });
    } catch (error) {
      if (!isOwnedByOther(error)) throw error;
      ctx.patchStatus({
        conditions: [ready('False', 'ConfigMapNotOwned', `ConfigMap ${name} exists and is controlled by another object`)],
      });
      throw new TerminalError(`ConfigMap ${namespace}/${name} exists and is controlled by another object than Widget ${metadata.name}`);
    }
    ctx.patchStatus({
      observedGeneration: metadata.generation ?? 0,
      configMap: name,
      conditions: [ready('True', 'ConfigMapReady', `ConfigMap ${name} is up to date`)],
    });
    return undefined;
  },

  async finalize(_widget, ctx) {
    await ctx.deps.records.remove(formatKey(ctx.key));
  },
});
