// Watcher memory per tracked object: a simulator holding N Widgets, and for each N a fresh process that syncs a Watcher on them and reports heap and RSS growth over its own baseline.
//
// Usage: npm run bench:watcher-memory [-- --objects 10000,100000 --page 500]
// The simulator runs in this process; each measurement runs in a child (watcher-memory-child.ts) so
// neither the simulator nor an earlier size is counted. Heap is V8's heapUsed after forced GCs; RSS
// also holds what the allocator kept from parsing list pages, so it is the looser figure.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startKubeSimulator } from '@conveyor/test';

const CHILD = fileURLToPath(new URL('./watcher-memory-child.ts', import.meta.url));
const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets' };

interface Measured {
  tracked: number;
  syncMs: number;
  base: { heapUsed: number; rss: number };
  after: { heapUsed: number; rss: number };
}

const { values } = parseArgs({
  options: { objects: { type: 'string', default: '10000,100000' }, page: { type: 'string', default: '500' } },
});
const sizes = values.objects.split(',').map((s) => Number(s.replaceAll('_', '').trim()));
if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) {
  process.stderr.write(`--objects must be positive integers separated by commas, got "${values.objects}"\n`);
  process.exit(2);
}
sizes.sort((a, b) => a - b);
const pageSize = Number(values.page);
if (!Number.isInteger(pageSize) || pageSize <= 0) {
  process.stderr.write(`--page must be a positive integer, got "${values.page}"\n`);
  process.exit(2);
}

/** A Widget shaped like a typical custom resource: a few labels and annotations, a small spec. */
function widget(i: number): Record<string, unknown> {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: {
      name: `w-${i}`,
      labels: { 'app.kubernetes.io/name': 'widget', 'app.kubernetes.io/part-of': 'bench', tier: i % 3 === 0 ? 'gold' : 'silver' },
      annotations: { 'example.com/owner-team': `team-${i % 17}`, 'example.com/description': 'a widget made by the benchmark' },
      finalizers: ['example.com/external-record'],
    },
    spec: { color: i % 2 === 0 ? 'blue' : 'green', size: i },
  };
}

async function measure(server: string, token: string, count: number): Promise<Measured> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--max-old-space-size=4096', CHILD, server, token, String(count), String(pageSize)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-2000);
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 900_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  if (code !== 0) throw new Error(`the measuring process exited ${String(code)}: ${err}`);
  const measured = JSON.parse(out.trim().split('\n').pop() ?? '') as Measured;
  if (measured.tracked !== count) throw new Error(`the watcher tracked ${measured.tracked} objects, expected ${count}`);
  return measured;
}

const sim = await startKubeSimulator();
try {
  const crd = await fetch(`${sim.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          { name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object' } } },
        ],
      },
    }),
  });
  if (!crd.ok) throw new Error(`creating the Widget CRD answered ${crd.status}: ${await crd.text()}`);

  const rows: { count: number; m: Measured }[] = [];
  let created = 0;
  for (const count of sizes) {
    const from = created;
    sim.createObjects(
      WIDGETS,
      'default',
      Array.from({ length: count - from }, (_, j) => widget(from + j)),
    );
    created = count;
    process.stderr.write(`measuring a watcher on ${count.toLocaleString('en')} Widgets (pages of ${pageSize})...\n`);
    const m = await measure(sim.url, sim.token, count);
    rows.push({ count, m });
  }

  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const header = ['objects', 'sync s', 'base heap MB', 'heap +MB', 'heap B/object', 'base RSS MB', 'RSS +MB', 'RSS B/object'];
  const lines = rows.map(({ count, m }) => {
    const heap = m.after.heapUsed - m.base.heapUsed;
    const rss = m.after.rss - m.base.rss;
    return [
      count.toLocaleString('en'),
      (m.syncMs / 1000).toFixed(1),
      mb(m.base.heapUsed),
      mb(heap),
      String(Math.round(heap / count)),
      mb(m.base.rss),
      mb(rss),
      String(Math.round(rss / count)),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  process.stdout.write(`Watcher memory per tracked object (metadata-only list in pages of ${pageSize}, Node ${process.version})\n`);
  process.stdout.write(`${format(header)}\n`);
  for (const line of lines) process.stdout.write(`${format(line)}\n`);
  // The fixed cost of a synced watcher (buffers, sockets, metrics) weighs on small sizes; the slope between sizes is the per-object cost.
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1] as { count: number; m: Measured };
    const b = rows[i] as { count: number; m: Measured };
    const n = b.count - a.count;
    const growth = (r: { m: Measured }, field: 'heapUsed' | 'rss') => r.m.after[field] - r.m.base[field];
    process.stdout.write(
      `marginal ${a.count.toLocaleString('en')} → ${b.count.toLocaleString('en')}: heap ${Math.round((growth(b, 'heapUsed') - growth(a, 'heapUsed')) / n)} B/object, RSS ${Math.round((growth(b, 'rss') - growth(a, 'rss')) / n)} B/object\n`,
    );
  }
} finally {
  await sim.close();
}
