// B1 watcher memory: heap and RSS per tracked object of the Watcher versus a client-node informer holding the same Widgets, each in its own process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import { type Bar, bySize, Cleanups, createWidgets, round, type Scenario, simCreate } from '../bench-support.ts';

const CHILD = fileURLToPath(new URL('./b1-memory-child.ts', import.meta.url));

interface Held {
  heapBytes: number;
  rssBytes: number;
  held: number;
  syncMs: number;
}

async function measure(mode: 'watcher' | 'informer', server: string, token: string, count: number, cleanups: Cleanups): Promise<Held> {
  const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=4096', CHILD, mode, server, token, String(count)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-2000);
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  if (code !== 0) throw new Error(`B1 ${mode} process exited ${String(code)}: ${err}`);
  const held = JSON.parse(out.trim().split('\n').pop() ?? '') as Held;
  if (held.held !== count) throw new Error(`B1 ${mode} held ${held.held} objects, expected ${count}`);
  return held;
}

export const watcherMemory: Scenario = async ({ size, log }) => {
  const counts = bySize(size, { tiny: [300], default: [2_000, 10_000], large: [10_000, 50_000, 100_000] });
  const cleanups = new Cleanups();
  try {
    const world = await startWidgetWorld({ log: { level: 'error' } });
    cleanups.add(() => world.close());
    const create = simCreate(world.sim);
    const rows: { count: number; watcher: Held; informer: Held }[] = [];
    let created = 0;
    for (const count of counts) {
      log(`B1: creating Widgets up to ${count}`);
      await createWidgets(create, count - created, { prefix: `w-${created}-` });
      created = count;
      const watcher = await measure('watcher', world.sim.url, world.sim.token, count, cleanups);
      const informer = await measure('informer', world.sim.url, world.sim.token, count, cleanups);
      rows.push({ count, watcher, informer });
      log(
        `B1: ${count} objects: watcher ${Math.round(watcher.heapBytes / count)} B/object heap, informer ${Math.round(informer.heapBytes / count)} B/object`,
      );
    }
    const last = rows[rows.length - 1];
    if (last === undefined) throw new Error('B1: no size measured');
    const per = (h: Held, count: number) => ({ heap: h.heapBytes / count, rss: h.rssBytes / count });
    const w = per(last.watcher, last.count);
    const inf = per(last.informer, last.count);
    const ratio = w.heap / inf.heap;
    const details: Record<string, number> = {};
    const bars: Bar[] = [];
    for (const row of rows) {
      const rw = per(row.watcher, row.count);
      const ri = per(row.informer, row.count);
      Object.assign(details, {
        [`watcherHeapBytesPerObject@${row.count}`]: Math.round(rw.heap),
        [`watcherRssBytesPerObject@${row.count}`]: Math.round(rw.rss),
        [`informerHeapBytesPerObject@${row.count}`]: Math.round(ri.heap),
        [`informerRssBytesPerObject@${row.count}`]: Math.round(ri.rss),
        [`watcherSyncMs@${row.count}`]: row.watcher.syncMs,
        [`informerSyncMs@${row.count}`]: row.informer.syncMs,
      });
      bars.push({ label: `informer heap @${row.count}`, value: Math.round(ri.heap) });
      bars.push({ label: `watcher heap @${row.count}`, value: Math.round(rw.heap) });
    }
    const first = rows[0];
    if (first !== undefined && first !== last) {
      // Growth between the smallest and the largest size: what each further object costs, without fixed overhead.
      details.watcherMarginalHeapBytesPerObject = Math.round(
        (last.watcher.heapBytes - first.watcher.heapBytes) / (last.count - first.count),
      );
      details.informerMarginalHeapBytesPerObject = Math.round(
        (last.informer.heapBytes - first.informer.heapBytes) / (last.count - first.count),
      );
    }
    return {
      id: 'B1',
      title: 'Watcher memory',
      setup: `Widgets (3 labels, 2 annotations, small spec, managedFields) at ${counts.join(', ')} objects on the simulator; the Watcher (metadata-only list+watch) and a client-node informer (makeInformer, whole objects) each in a fresh process; growth of heapUsed and RSS over a baseline taken after loading, after GC`,
      figure: { label: `watcher heap per object @${last.count}`, value: Math.round(w.heap), unit: 'B' },
      reference: { label: 'client-node informer heap per object', value: Math.round(inf.heap), unit: 'B' },
      ratio: round(ratio, 4),
      goal: { text: '≤ 1/20 of the informer and ≤ 200 B per object', holds: ratio <= 1 / 20 && w.heap <= 200 },
      details,
      chart: { title: 'B1: heap bytes per tracked object', unit: 'B', bars },
      notes: [
        'RSS growth includes whatever the allocator kept from parsing the list (and can even shrink); heap is the figure the goal is about.',
        'Per-object figures divide the whole growth by the object count, so they include fixed costs (connections, metrics, buffers); the marginal figures, between the smallest and the largest size, do not.',
      ],
    };
  } finally {
    await cleanups.run();
  }
};
