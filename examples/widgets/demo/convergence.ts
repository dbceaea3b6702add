// The demo's proof that it worked: every live Widget reconciled at its generation with a matching child and record; every deleted one gone with its record.

import { isDeepStrictEqual } from 'node:util';
import { formatKey, type KubeApiClient, type KubeObject, keyOf, type StoredObject } from '@conveyor/shared';
import { childData, childName, paletteOf, type Widget } from '../controller.ts';
import type { ExampleRecords } from '../example-records.ts';
import { CONFIGMAPS, WIDGETS } from '../widget-harness.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export interface ConvergenceReport {
  holds: boolean;
  live: number;
  expectedLive: number;
  /** Live Widgets that meet every condition. */
  converged: number;
  deletedGone: number;
  expectedDeleted: number;
  /** Up to ten problems, each naming the Widget. */
  problems: string[];
}

export interface ConvergenceInput {
  client: KubeApiClient;
  records: ExampleRecords;
  namespace: string;
  /** Names that must exist (seeded and created, minus deleted). */
  expectedLive: ReadonlySet<string>;
  deleted: readonly string[];
}

/**
 * Checks, from the API server and the external records:
 * - every expected Widget exists, is not being deleted, has `status.observedGeneration == metadata.generation`,
 *   a Ready=True condition at that generation, a child ConfigMap it controls whose data matches its spec
 *   (and the palette's current value, for palette users), and an external record with its uid;
 * - every deleted Widget is gone from the API and its external record is gone.
 */
export async function checkConvergence(input: ConvergenceInput): Promise<ConvergenceReport> {
  const { client, namespace } = input;
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 10) problems.push(text);
  };
  const [widgets, children] = await Promise.all([client.list<Widget>(WIDGETS, namespace), client.list<ConfigMap>(CONFIGMAPS, namespace)]);
  const childrenByName = new Map(children.items.map((cm) => [cm.metadata.name, cm]));
  const byName = new Map<string, StoredObject<Widget>>(widgets.items.map((w) => [w.metadata.name, w]));
  let converged = 0;
  let failures = 0;
  for (const name of input.expectedLive) {
    const widget = byName.get(name);
    const why = widget === undefined ? 'missing' : await notConverged(widget, childrenByName, input.records);
    if (why === undefined) converged += 1;
    else {
      failures += 1;
      problem(`${namespace}/${name}: ${why}`);
    }
  }
  const unexpected = widgets.items.filter((w) => !input.expectedLive.has(w.metadata.name));
  for (const w of unexpected)
    problem(`${namespace}/${w.metadata.name}: should be gone, still here${w.metadata.deletionTimestamp ? ' (deleting)' : ''}`);
  let deletedGone = 0;
  for (const name of input.deleted) {
    const record = await input.records.get(formatKey(keyOf(WIDGETS, { metadata: { name, namespace } })));
    if (byName.has(name)) continue; // reported above
    if (record !== undefined) problem(`${namespace}/${name}: deleted, but its external record is still there`);
    else deletedGone += 1;
  }
  return {
    holds: failures === 0 && unexpected.length === 0 && deletedGone === input.deleted.length,
    live: widgets.items.length,
    expectedLive: input.expectedLive.size,
    converged,
    deletedGone,
    expectedDeleted: input.deleted.length,
    problems,
  };
}

async function notConverged(
  widget: StoredObject<Widget>,
  children: ReadonlyMap<string, StoredObject<ConfigMap>>,
  records: ExampleRecords,
): Promise<string | undefined> {
  const { metadata, status } = widget;
  if (metadata.deletionTimestamp !== undefined) return 'being deleted';
  if (status?.observedGeneration !== metadata.generation) {
    return `observedGeneration ${status?.observedGeneration ?? 'unset'} != generation ${metadata.generation}`;
  }
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True' || ready.observedGeneration !== metadata.generation) return 'Ready is not True at this generation';
  const child = children.get(childName(widget));
  if (child === undefined) return `child ConfigMap ${childName(widget)} missing`;
  if (!child.metadata.ownerReferences?.some((o) => o.controller === true && o.uid === metadata.uid)) return 'child not controlled by it';
  const paletteName = paletteOf(widget);
  const palette = paletteName === undefined ? undefined : children.get(paletteName);
  const wanted = childData(widget, palette);
  if (!isDeepStrictEqual(child.data ?? {}, wanted)) return `child data ${JSON.stringify(child.data)} != ${JSON.stringify(wanted)}`;
  const record = await records.get(formatKey(keyOf(WIDGETS, widget)));
  if (record !== metadata.uid) return 'external record missing or of another uid';
  return undefined;
}
