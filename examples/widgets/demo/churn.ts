// The demo's workload: the Widgets and shared palette it starts with, then the churn a busy cluster sees — every kind of write a controller must tell apart.
import type { KubeApiClient, ObjectKey } from '@conveyor/shared';
import { IS_PALETTE_LABEL, PALETTE_LABEL, type Widget } from '../controller.ts';
import { CONFIGMAPS, WIDGETS } from '../widget-harness.ts';

export const PALETTE_NAME = 'widget-palette';

export interface Workload {
  objects: number;
  /** Names of the Widgets that use the shared palette (a quarter of them). */
  dependents: string[];
  /** Widgets created by the burst. */
  burst: number;
}

/** What the churn did, for the convergence check and the summary. */
export interface ChurnRecord {
  specEdits: number;
  statusEdits: number;
  labelEdits: number;
  deleted: string[];
  created: string[];
  manual: string[];
  paletteValue: string;
}

export interface ChurnDeps {
  client: KubeApiClient;
  namespace: string;
  /** A write, sent at `at`, that must lead to a reconcile of this Widget (starts its latency clock). */
  wrote(name: string, at: number): void;
  /** Asks for a reconcile through the manual-enqueue API. */
  manualEnqueue(name: string): Promise<void>;
  /** Says what happens next (the live view shows it). */
  phase(name: string): void;
  /** Lets the pipeline show each phase before the next starts. */
  pause(): Promise<void>;
}

export const widgetName = (i: number) => `w-${i}`;

export function planWorkload(objects: number): Workload {
  const dependents: string[] = [];
  for (let i = 0; i < objects; i += 4) dependents.push(widgetName(i));
  return { objects, dependents, burst: Math.max(1, Math.round(objects / 2)) };
}

/** Runs `fn` over `items`, `width` at a time. */
export async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<unknown>, width = 50): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

const key = (namespace: string, name: string): ObjectKey => ({ ...WIDGETS, namespace, name });

/** A Widget; one that uses a palette names it in its label (the watcher indexes that label: nothing is written on the palette). */
function newWidget(namespace: string, name: string, i: number, palette: string | undefined) {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/part-of': 'conveyor-demo', ...(palette === undefined ? {} : { [PALETTE_LABEL]: palette }) },
    },
    spec: { color: i % 2 === 0 ? 'blue' : 'green', size: i },
  };
}

/** The shared palette ConfigMap, then the Widgets (a quarter of them using the palette). */
export async function seed(client: KubeApiClient, namespace: string, workload: Workload): Promise<void> {
  await client.create(CONFIGMAPS, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: PALETTE_NAME,
      namespace,
      labels: { [IS_PALETTE_LABEL]: 'true' },
    },
    data: { palette: 'sunrise', notes: 'edited by people; the Widgets do not read it' },
  });
  const users = new Set(workload.dependents);
  const indexes = Array.from({ length: workload.objects }, (_, i) => i);
  await inBatches(indexes, (i) =>
    client.create<Widget>(WIDGETS, newWidget(namespace, widgetName(i), i, users.has(widgetName(i)) ? PALETTE_NAME : undefined)),
  );
}

/** A record of no churn yet; `churn` fills the one it is given as it goes, so a run stopped halfway knows what it did. */
export function emptyChurnRecord(): ChurnRecord {
  return { specEdits: 0, statusEdits: 0, labelEdits: 0, deleted: [], created: [], manual: [], paletteValue: 'sunset' };
}

/**
 * The churn, in order: spec edits (some Widgets edited three times in a row, which merge), status-only
 * edits and label edits (dropped by the `generation` predicate), deletes (each runs finalize), an
 * irrelevant then a relevant edit of the shared palette, a manual enqueue, and a burst of new Widgets.
 */
export async function churn(deps: ChurnDeps, workload: Workload, record: ChurnRecord = emptyChurnRecord()): Promise<ChurnRecord> {
  const { client, namespace } = deps;
  const n = workload.objects;
  const pick = (from: number, count: number) => Array.from({ length: Math.min(count, n - from) }, (_, i) => widgetName(from + i));

  deps.phase('spec edits');
  const edited = pick(0, Math.round(n * 0.15));
  const thrice = new Set(edited.slice(0, Math.round(edited.length / 3)));
  for (let round = 0; round < 3; round += 1) {
    const names = round === 0 ? edited : [...thrice];
    await inBatches(names, async (name) => {
      const at = Date.now();
      await client.patch(key(namespace, name), { type: 'merge', body: { spec: { size: 10_000 + round } } });
      deps.wrote(name, at);
      record.specEdits += 1;
    });
  }
  await deps.pause();

  deps.phase('status-only edits');
  await inBatches(pick(Math.round(n * 0.15), Math.round(n * 0.1)), async (name) => {
    await client.patch(
      key(namespace, name),
      { type: 'merge', body: { status: { lastAudited: new Date().toISOString() } } },
      { subresource: 'status' },
    );
    record.statusEdits += 1;
  });
  await deps.pause();

  deps.phase('label edits');
  await inBatches(pick(Math.round(n * 0.25), Math.round(n * 0.1)), async (name) => {
    await client.patch(key(namespace, name), { type: 'merge', body: { metadata: { labels: { 'demo.conveyor.dev/touched': 'yes' } } } });
    record.labelEdits += 1;
  });
  await deps.pause();

  deps.phase('deletes (finalize removes each external record)');
  // Widgets that do not use the palette, so the palette edit below still has all its dependents.
  const users = new Set(workload.dependents);
  const doomed = pick(Math.round(n * 0.35), Math.round(n * 0.15))
    .filter((name) => !users.has(name))
    .slice(0, Math.round(n * 0.1));
  await inBatches(doomed, async (name) => {
    const at = Date.now();
    await client.delete(key(namespace, name));
    deps.wrote(name, at);
    record.deleted.push(name);
  });
  await deps.pause();

  const palette = { ...CONFIGMAPS, namespace, name: PALETTE_NAME };
  deps.phase('irrelevant palette edit (notes)');
  await client.patch(palette, { type: 'merge', body: { data: { notes: 'rewritten; still nothing the Widgets read' } } });
  await deps.pause();

  deps.phase(`relevant palette edit (${workload.dependents.length} dependents)`);
  const at = Date.now();
  await client.patch(palette, { type: 'merge', body: { data: { palette: record.paletteValue } } });
  for (const name of workload.dependents) deps.wrote(name, at);
  await deps.pause();

  deps.phase('manual enqueue');
  const manual = widgetName(n - 1);
  deps.wrote(manual, Date.now());
  await deps.manualEnqueue(manual);
  record.manual.push(manual);
  await deps.pause();

  deps.phase(`burst of ${workload.burst} new Widgets`);
  const burst = Array.from({ length: workload.burst }, (_, i) => i);
  await inBatches(burst, async (i) => {
    const name = `burst-${i}`;
    const at = Date.now();
    await client.create<Widget>(WIDGETS, newWidget(namespace, name, n + i, undefined));
    deps.wrote(name, at);
    record.created.push(name);
  });
  return record;
}
