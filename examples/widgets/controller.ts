// The example Widget controller: one child ConfigMap per Widget, observedGeneration and a Ready condition, an external record removed by finalize, and a shared palette ConfigMap.

import { isDeepStrictEqual } from 'node:util';
import { type Config, createRedisConnection, dataKeys, formatKey, type KubeObject, type TargetRef, TerminalError } from '@conveyor/shared';
import { type Condition, defineController, setCondition } from '@conveyor/workers';
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

/** What the child ConfigMap holds: the Widget's spec, as strings, and its palette when it uses one. */
export function childData(widget: Widget, palette?: ConfigMap): Record<string, string> {
  const data = { color: widget.spec?.color ?? '', size: String(widget.spec?.size ?? 0) };
  return widget.spec?.paletteFrom === undefined ? data : { ...data, palette: palette?.data?.palette ?? '' };
}

export function connectRecords(config: Config): WidgetDeps {
  const redis = createRedisConnection(config.redis);
  return {
    records: new ExampleRecords(redis, config.redis.prefix),
    now: () => new Date(),
    close: async () => {
      await redis.quit();
    },
  };
}

export default defineController<Widget, WidgetDeps>({
  name: 'widgets',
  for: { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' },
  predicates: ['generation'],
  owns: [{ group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' }],
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

  setup: ({ config }) => connectRecords(config),

  async reconcile(widget, ctx) {
    const { metadata } = widget;
    const namespace = metadata.namespace ?? '';
    // The external record first: finalize removes it, and our finalizer is on the object by now.
    await ctx.deps.records.put(formatKey(ctx.key), metadata.uid ?? '');

    const name = childName(widget);
    const key = { ...CONFIGMAPS, namespace, name };
    const paletteFrom = widget.spec?.paletteFrom;
    const palette =
      paletteFrom === undefined ? undefined : await ctx.client.find<ConfigMap>({ ...CONFIGMAPS, namespace, name: paletteFrom });
    const data = childData(widget, palette);
    const existing = await ctx.client.find<ConfigMap>(key);
    if (existing === undefined) {
      await ctx.client.create<ConfigMap>(CONFIGMAPS, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'conveyor-widgets' },
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
        data,
      });
    } else {
      const owner = existing.metadata.ownerReferences?.find((ref) => ref.controller === true);
      if (owner?.uid !== metadata.uid) {
        ctx.patchStatus({
          conditions: setCondition(
            widget.status?.conditions,
            {
              type: 'Ready',
              status: 'False',
              reason: 'ConfigMapNotOwned',
              message: `ConfigMap ${name} exists and is not controlled by this Widget`,
              observedGeneration: metadata.generation ?? 0,
            },
            ctx.deps.now,
          ),
        });
        throw new TerminalError(`ConfigMap ${namespace}/${name} exists and is not controlled by Widget ${metadata.name}`);
      }
      if (!isDeepStrictEqual(existing.data ?? {}, data)) {
        await ctx.client.patch(key, { type: 'merge', body: { metadata: { resourceVersion: existing.metadata.resourceVersion }, data } });
      }
    }

    ctx.patchStatus({
      observedGeneration: metadata.generation ?? 0,
      configMap: name,
      conditions: setCondition(
        widget.status?.conditions,
        {
          type: 'Ready',
          status: 'True',
          reason: 'ConfigMapReady',
          message: `ConfigMap ${name} is up to date`,
          observedGeneration: metadata.generation ?? 0,
        },
        ctx.deps.now,
      ),
    });
    return undefined;
  },

  async finalize(_widget, ctx) {
    await ctx.deps.records.remove(formatKey(ctx.key));
  },
});
