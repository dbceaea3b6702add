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
  TerminalError,
} from '@conveyor/shared';
import { type Condition, condition, defineController } from '@conveyor/workers';
import { ExampleRecords } from './example-records.ts';

export interface WidgetSpec {
  color?: string;
  size?: number;
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
/**
 * On a Widget: the name of the palette ConfigMap (same namespace) whose `palette` key its child copies.
 * The watcher indexes this label, so a palette edit finds the Widgets that use it with nothing
 * written on the palette, whatever their number.
 */
export const PALETTE_LABEL = 'example.com/palette';
/** Marks a ConfigMap as a palette Widgets may use; only such ConfigMaps are watched in full. */
export const IS_PALETTE_LABEL = 'example.com/is-palette';

/** The palette a Widget uses, if any. */
export function paletteOf(widget: KubeObject): string | undefined {
  const name = widget.metadata?.labels?.[PALETTE_LABEL];
  return name === undefined || name === '' ? undefined : name;
}

/** The child ConfigMap's name for a Widget. */
export function childName(widget: { metadata: { name: string } }): string {
  return `${widget.metadata.name}-widget`;
}

/** The child ConfigMap as this controller applies it: labelled as ours, with the Widget's data (`ctx.own` makes the Widget its controller). */
export function childConfigMap(widget: StoredObject<Widget>, palette?: ConfigMap): ApplyObject<ConfigMap> {
  const { metadata } = widget;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: childName(widget), namespace: metadata.namespace ?? '', labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
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
  return paletteOf(widget) === undefined ? data : { ...data, palette: palette?.data?.palette ?? '' };
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
  // A spec edit, or a move to another palette (the label), reconciles; status and other label edits do not.
  predicates: ['generation', { name: 'palette', changed: paletteOf }],
  // Only the ConfigMaps this controller made (it labels them), not every ConfigMap in the cluster.
  owns: [{ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', labels: `${MANAGED_BY_LABEL}=${MANAGED_BY}` }],
  // An edit of a palette's `palette` key reconciles the Widgets whose label names it (found through the
  // watcher's index of that label); an edit of anything else in it enqueues nothing.
  watches: [
    {
      resource: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
      labels: `${IS_PALETTE_LABEL}=true`,
      index: { label: PALETTE_LABEL },
      changed: dataKeys(['palette']),
    },
  ],
  finalizer: WIDGET_FINALIZER,
  // `flux reconcile` (or `conveyor enqueue --annotate`) sees its request answered in status.lastHandledReconcileAt.
  lastHandledReconcileAt: true,

  setup: ({ config, logger }) => connectRecords(config, logger),

  async reconcile(widget, ctx) {
    const { metadata } = widget;
    const namespace = metadata.namespace ?? '';
    // The external record first: finalize removes it, and our finalizer is on the object by now.
    await ctx.deps.records.put(formatKey(ctx.key), metadata.uid ?? '');

    const name = childName(widget);
    const paletteName = paletteOf(widget);
    const palette =
      paletteName === undefined ? undefined : await ctx.client.find<ConfigMap>({ ...CONFIGMAPS, namespace, name: paletteName });
    const ready = (status: 'True' | 'False', reason: string, message: string) =>
      condition(
        widget.status?.conditions,
        { type: 'Ready', status, reason, message, observedGeneration: metadata.generation ?? 0 },
        ctx.deps.now,
      );
    try {
      // One request whether the child exists or not, and none of it read first. `force`: this
      // controller is the authority over its child, so someone else's edit of the data is undone.
      // ctx.own: the Widget becomes the child's controller owner, so the ConfigMap goes when the Widget does.
      await ctx.client.apply<ConfigMap>(ctx.own(childConfigMap(widget, palette)), { force: true });
    } catch (error) {
      if (!isOwnedByOther(error)) throw error;
      const why = `ConfigMap ${name} exists and is controlled by another object`;
      ctx.patchStatus({ conditions: [ready('False', 'ConfigMapNotOwned', why)] });
      // What `kubectl describe widget` shows; repeats count up one Event's series instead of adding Events.
      ctx.events.warning('ConfigMapNotOwned', why);
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
