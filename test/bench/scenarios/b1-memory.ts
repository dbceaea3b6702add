// B1 watcher memory: heap per tracked object of the Watcher versus a client-node informer holding the same Widgets, each in its own process (with each process's RSS beside it), and the peak and steady RSS of the watcher a pod runs through a first sync and a relist.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_OPTIONS, WATCHER_PEAK_BUDGET_MIB } from '../../../cli/build/sizing.ts';
import { startWidgetWorld } from '../../../examples/widgets/widget-harness.ts';
import { buildWidgetBundle, measureWatcherMemory, type WatcherMemory } from '../../support/watcher-memory.ts';
import { atMost, type Bar, bySize, Cleanups, createWidgets, round, type Scenario, simCreate } from '../bench-support.ts';

const CHILD = fileURLToPath(new URL('./b1-memory-child.ts', import.meta.url));

interface Held {
  heapBytes: number;
  /** The process's resident set once its modules were loaded, and once it holds every object. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  held: number;
  syncMs: number;
}

const MiB = (bytes: number) => round(bytes / 1024 ** 2, 1);

async function measure(
  mode: 'watcher' | 'watcher-indexed' | 'informer',
  server: string,
  token: string,
  count: number,
  cleanups: Cleanups,
): Promise<Held> {
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
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-b1-'));
    cleanups.add(() => rmSync(dir, { recursive: true, force: true }));
    const bundle = await buildWidgetBundle(dir);
    const configFile = world.writeConfigFile(dir, { log: { level: 'info' } });
    const rows: { count: number; watcher: Held; indexed: Held; informer: Held; pod: WatcherMemory; podUnbounded: WatcherMemory }[] = [];
    let created = 0;
    for (const count of counts) {
      log(`B1: creating Widgets up to ${count}`);
      await createWidgets(create, count - created, { prefix: `w-${created}-` });
      created = count;
      const watcher = await measure('watcher', world.sim.url, world.sim.token, count, cleanups);
      const indexed = await measure('watcher-indexed', world.sim.url, world.sim.token, count, cleanups);
      const informer = await measure('informer', world.sim.url, world.sim.token, count, cleanups);
      // The pod's watcher: the bundle with the generated NODE_OPTIONS, and without them (Node's own heap sizing).
      const pod = await measureWatcherMemory({ bundle, configFile, nodeOptions: NODE_OPTIONS, sim: world.sim });
      const podUnbounded = await measureWatcherMemory({ bundle, configFile, nodeOptions: '', sim: world.sim });
      rows.push({ count, watcher, indexed, informer, pod, podUnbounded });
      log(
        `B1: ${count} objects: pod watcher peak RSS ${MiB(pod.relistPeakBytes)} MiB (${MiB(podUnbounded.relistPeakBytes)} MiB without the heap settings)`,
      );
      log(
        `B1: ${count} objects: watcher ${Math.round(watcher.heapBytes / count)} B/object heap, informer ${Math.round(informer.heapBytes / count)} B/object`,
      );
    }
    const last = rows[rows.length - 1];
    const first = rows[0];
    if (last === undefined || first === undefined) throw new Error('B1: no size measured');
    // What each further object costs: growth between the smallest and the largest size, so the fixed costs of a running
    // watcher (compiled code, connections, metrics) are not spread over the objects; one size alone gives the total per object.
    const perObject = (of: (row: (typeof rows)[number]) => number) =>
      first === last ? of(last) / last.count : (of(last) - of(first)) / (last.count - first.count);
    const w = { heap: perObject((row) => row.watcher.heapBytes) };
    const inf = { heap: perObject((row) => row.informer.heapBytes) };
    const sizes = first === last ? `@${last.count}` : `${first.count}→${last.count}`;
    // Rounded once: the table shows this value and the goal is judged on it, so the two cannot disagree at the limit.
    const ratio = round(w.heap / inf.heap, 4);
    const details: Record<string, number> = {};
    const bars: Bar[] = [];
    for (const row of rows) {
      const watcherHeap = row.watcher.heapBytes / row.count;
      const informerHeap = row.informer.heapBytes / row.count;
      // RSS per process, never per object: see the note below.
      Object.assign(details, {
        [`watcherHeapBytesPerObject@${row.count}`]: Math.round(watcherHeap),
        [`informerHeapBytesPerObject@${row.count}`]: Math.round(informerHeap),
        [`indexHeapBytesPerObject@${row.count}`]: Math.round((row.indexed.heapBytes - row.watcher.heapBytes) / row.count),
        [`watcherRssMiB@${row.count}`]: MiB(row.watcher.rssAfterBytes),
        [`informerRssMiB@${row.count}`]: MiB(row.informer.rssAfterBytes),
        [`watcherSyncMs@${row.count}`]: row.watcher.syncMs,
        [`informerSyncMs@${row.count}`]: row.informer.syncMs,
        [`podPeakRssFirstSyncMiB@${row.count}`]: MiB(row.pod.firstSyncPeakBytes),
        [`podPeakRssMiB@${row.count}`]: MiB(row.pod.relistPeakBytes),
        [`podSteadyRssMiB@${row.count}`]: MiB(row.pod.steadyBytes),
        [`podPeakRssWithoutHeapSettingsMiB@${row.count}`]: MiB(row.podUnbounded.relistPeakBytes),
      });
      bars.push({ label: `informer heap @${row.count}`, value: Math.round(informerHeap) });
      bars.push({ label: `watcher heap @${row.count}`, value: Math.round(watcherHeap) });
    }
    details.watcherRssBeforeListMiB = MiB(last.watcher.rssBeforeBytes);
    details.informerRssBeforeListMiB = MiB(last.informer.rssBeforeBytes);
    if (first !== last) {
      // Growth between the smallest and the largest size: what each further object costs, without fixed overhead.
      details.watcherMarginalHeapBytesPerObject = Math.round(
        (last.watcher.heapBytes - first.watcher.heapBytes) / (last.count - first.count),
      );
      details.indexMarginalHeapBytesPerObject = Math.round(
        (last.indexed.heapBytes - first.indexed.heapBytes - (last.watcher.heapBytes - first.watcher.heapBytes)) /
          (last.count - first.count),
      );
      details.informerMarginalHeapBytesPerObject = Math.round(
        (last.informer.heapBytes - first.informer.heapBytes) / (last.count - first.count),
      );
    }
    return {
      id: 'B1',
      title: 'Watcher memory',
      setup: `Widgets (3 labels, 2 annotations, small spec, managedFields) at ${counts.join(', ')} objects on the simulator; the Watcher (metadata-only streaming list+watch) and a client-node informer (makeInformer, whole objects) each in a fresh process; growth of the V8 heap plus ArrayBuffer memory (heapUsed + arrayBuffers: typed arrays keep their contents outside the V8 heap) over a baseline taken after loading, after GC, per object between the smallest and the largest size; each process's RSS once it holds every object`,
      figure: { label: `watcher memory per object ${sizes}`, value: Math.round(w.heap), unit: 'B' },
      reference: { label: 'client-node informer memory per object', value: Math.round(inf.heap), unit: 'B' },
      ratio,
      goal: {
        text: `≤ 1/20 of the informer and ≤ 100 B per object; the pod's watcher peaks ≤ ${WATCHER_PEAK_BUDGET_MIB} MiB RSS through a first sync and a relist`,
        checks: [
          atMost('watcher / informer memory per object', ratio, 1 / 20),
          atMost('watcher memory per object (B)', Math.round(w.heap), 100),
          atMost('pod watcher peak RSS (MiB)', Math.max(...rows.map((row) => MiB(row.pod.relistPeakBytes))), WATCHER_PEAK_BUDGET_MIB),
        ],
      },
      details,
      chart: { title: 'B1: heap and array-buffer bytes per tracked object', unit: 'B', bars },
      notes: [
        `The pod's watcher (the \`podPeakRss…\` and \`podSteadyRss…\` figures) is the Widget example's bundle, as \`conveyor build\` writes it, run as \`watch\` with the generated manifests' NODE_OPTIONS (\`${NODE_OPTIONS}\`) and a private Redis: its peak RSS when its first streaming list is synced, after every watch is ended and answered 410 Gone so it lists again, and its RSS 3 s later. \`podPeakRssWithoutHeapSettings…\` is the same process with Node's own heap sizing, which lets the heap grow with the allocation rate of a sync rather than with what it keeps.`,
        'RSS (the `…RssMiB` figures) is what the whole process holds in memory, as `kubectl top pod` shows it: Node and the loaded modules (the `…RssBeforeListMiB` figures, before the list), V8 heap pages kept after a GC, and memory the C allocator kept from parsing the list responses (glibc arenas do not hand freed memory back at once). It shows what a pod needs, including the peak of listing, but not what the watcher keeps per object: V8 and the allocator grow and release memory in steps of megabytes, more than the whole heap growth of a few thousand objects, so RSS growth divided by the object count has come out at −1,530 B and at +6,437 B per object at 2,000 objects in two runs on the project machine. Heap per object is the figure the goal is about.',
        "The watcher's table (watcher/src/object-table.ts) keeps keys packed (key-store.ts: each name's bytes in an arena, its namespace interned, found through an open-addressed table of row numbers) and its columns in typed-array chunks of 1,024 rows: about 75 B per object, where a Map of key strings and one Float64Array per column took about 330 B at 20,000 objects (a heap snapshot showed the Map's entries, 46 B, and each key as a cons string over `default/` and the name, 88 B; the columns' 114 B lived in ArrayBuffers that `heapUsed` alone never counted). What remains per object: six doubles (uid, generation, resourceVersion and three hashes), a flags byte, the requested-at hash only for objects that carry the annotation, 8 B locating the name, the name's bytes and about 7 B of hash table.",
        "The `…BytesPerObject@N` figures divide the whole growth by the object count, so they include fixed costs (compiled code, connections, metrics, buffers: about 1.8 MB for the watcher); the marginal figures, between the smallest and the largest size — the table's figure — do not.",
        "`indexHeapBytesPerObject` is what an indexed mapped watch (`watches: [{ index: { label } }]`, the Widget example's palette watch) adds per object: a third process runs the same watcher with such a watch over the label every Widget carries, and the figure is its heap growth minus the plain watcher's, per object (the index's typed arrays and the mapped watch's own, empty, stream). Two processes' noise is in it too: at a few thousand objects it can be off by tens of bytes either way.",
      ],
    };
  } finally {
    await cleanups.run();
  }
};
