// The watcher's peak memory during a first sync and a relist of 20,000 Widgets, measured on the bundle a pod runs with the generated pods' NODE_OPTIONS, against the documented budget.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NODE_OPTIONS, WATCHER_PEAK_BUDGET_MIB } from '../../cli/build/sizing.ts';
import { startWidgetWorld, type WidgetWorld } from '../../examples/widgets/widget-harness.ts';
import { buildWidgetBundle, measureWatcherMemory } from '../support/watcher-memory.ts';

const OBJECTS = 20_000;
const MiB = 1024 * 1024;

describe('watcher memory: the bundle with the generated NODE_OPTIONS, at 20,000 Widgets', () => {
  let world: WidgetWorld;
  let dir: string;
  let bundle: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-memory-'));
    world = await startWidgetWorld({ log: { level: 'info' } });
    // Metadata as B1's Widgets carry it: three labels, two annotations, managedFields.
    world.sim.createObjects(
      { group: 'example.com', version: 'v1', plural: 'widgets' },
      'default',
      Array.from({ length: OBJECTS }, (_, i) => ({
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: {
          name: `w-${i}`,
          labels: { 'app.kubernetes.io/name': 'widget', 'app.kubernetes.io/part-of': 'memory-test', tier: i % 3 === 0 ? 'gold' : 'silver' },
          annotations: { 'example.com/owner-team': `team-${i % 17}`, 'example.com/description': 'a widget made by the memory test' },
        },
        spec: { color: i % 2 === 0 ? 'blue' : 'green', size: i + 1 },
      })),
    );
    bundle = await buildWidgetBundle(dir);
  });
  after(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`peaks within ${WATCHER_PEAK_BUDGET_MIB} MiB during its first sync and during a relist`, async (t) => {
    const memory = await measureWatcherMemory({
      bundle,
      configFile: world.writeConfigFile(dir),
      nodeOptions: NODE_OPTIONS,
      sim: world.sim,
    });
    t.diagnostic(
      `peak RSS ${Math.round(memory.firstSyncPeakBytes / MiB)} MiB after the first sync (${memory.firstSyncMs} ms from start), ${Math.round(memory.relistPeakBytes / MiB)} MiB after the relist, ${Math.round(memory.steadyBytes / MiB)} MiB later; budget ${WATCHER_PEAK_BUDGET_MIB} MiB`,
    );
    assert.ok(
      memory.relistPeakBytes <= WATCHER_PEAK_BUDGET_MIB * MiB,
      `peak RSS ${Math.round(memory.relistPeakBytes / MiB)} MiB is over the ${WATCHER_PEAK_BUDGET_MIB} MiB budget`,
    );
  });
});
