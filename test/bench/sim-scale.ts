// Benchmark: `conveyor sim` holding 100,000 objects of about 2 KB, listed in pages of 500 while 10 metadata watches are open; prints time and RSS.
//
// Usage: npm run bench:sim [-- --objects 100000 --watches 10 --page 500 --concurrency 32]
// The simulator runs in its own process (as `conveyor sim` does), so its RSS is not mixed with the client's.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  setHeaderOptions,
  type V1CustomResourceDefinition,
  Watch,
} from '@kubernetes/client-node';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '100000' },
    watches: { type: 'string', default: '10' },
    page: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '32' },
  },
});
const OBJECTS = Number(values.objects);
const WATCHES = Number(values.watches);
const PAGE = Number(values.page);
const CONCURRENCY = Number(values.concurrency);
const META_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const META = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

const bin = fileURLToPath(new URL('../../bin/conveyor.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-sim-'));
const kubeconfig = join(dir, 'kubeconfig');

async function startSim(): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--max-old-space-size=4096', bin, 'sim', '--port', '0', '--kubeconfig-out', kubeconfig, '--history-window', '75s'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('kubeconfig with a bearer token written')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`conveyor sim exited ${String(code)}`)));
  });
  return child;
}

const child = await startSim();
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const server = kc.getCurrentCluster()?.server ?? '';
const token = (JSON.parse(readFileSync(kubeconfig, 'utf8')) as { users: Array<{ user: { token: string } }> }).users[0]?.user.token ?? '';

async function stats(): Promise<{ objects: number; openWatches: number; memory: NodeJS.MemoryUsage }> {
  // The simulator's own control endpoint: client-node has no call for it.
  const response = await fetch(`${server}/_sim/stats`, { headers: { authorization: `Bearer ${token}` } });
  return (await response.json()) as { objects: number; openWatches: number; memory: NodeJS.MemoryUsage };
}
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

try {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const group = 'bench.conveyor.dev';
  // Typed, so the key reaches the server under client-node's name (a wire name would be dropped and every spec pruned).
  const crd: V1CustomResourceDefinition = {
    metadata: { name: `items.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural: 'items', singular: 'item', kind: 'Item' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  };
  await core.createNamespace({ body: { metadata: { name: 'bench' } } });
  await kc.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({ body: crd });
  const idle = await stats();

  // Watches first, so every create is also delivered to them.
  let received = 0;
  const controllers: AbortController[] = [];
  const watchConfig = {
    getCurrentCluster: () => kc.getCurrentCluster(),
    applySecurityAuthentication: async (context: { setHeaderParam(k: string, v: string): void }) => {
      await kc.applySecurityAuthentication(context as never);
      context.setHeaderParam('Accept', META);
    },
  } as unknown as KubeConfig;
  for (let i = 0; i < WATCHES; i++) {
    controllers.push(
      await new Watch(watchConfig).watch(
        `/apis/${group}/v1/namespaces/bench/items`,
        { allowWatchBookmarks: true, resourceVersion: '0' },
        () => {
          received += 1;
        },
        () => {},
      ),
    );
  }

  const filler = 'x'.repeat(1500);
  const createStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < OBJECTS) {
        const i = next++;
        // Plain fetch for the bulk load: client-node's per-request machinery, not the simulator, would set the pace.
        const response = await fetch(`${server}/apis/${group}/v1/namespaces/bench/items`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'user-agent': 'conveyor-bench' },
          body: JSON.stringify({
            apiVersion: `${group}/v1`,
            kind: 'Item',
            metadata: {
              name: `item-${String(i).padStart(6, '0')}`,
              labels: { shard: String(i % 16), tier: i % 3 === 0 ? 'gold' : 'silver' },
            },
            spec: { index: i, payload: filler },
          }),
        });
        if (response.status !== 201) throw new Error(`create ${i}: HTTP ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
      }
    }),
  );
  const createMs = performance.now() - createStart;
  const loaded = await stats();

  const listOnce = async (accept: string | undefined) => {
    const started = performance.now();
    let pages = 0;
    let items = 0;
    let token: string | undefined;
    const pageTimes: number[] = [];
    do {
      const t0 = performance.now();
      const page = (await custom.listNamespacedCustomObject(
        { group, version: 'v1', namespace: 'bench', plural: 'items', limit: PAGE, ...(token === undefined ? {} : { _continue: token }) },
        accept === undefined ? undefined : setHeaderOptions('Accept', accept),
      )) as { items: unknown[]; metadata: { continue?: string } };
      pageTimes.push(performance.now() - t0);
      pages += 1;
      items += page.items.length;
      token = page.metadata.continue || undefined;
    } while (token !== undefined);
    pageTimes.sort((a, b) => a - b);
    return {
      ms: performance.now() - started,
      pages,
      items,
      p50: pageTimes[Math.floor(pages / 2)] ?? 0,
      p99: pageTimes[Math.floor(pages * 0.99)] ?? 0,
    };
  };
  const full = await listOnce(undefined);
  const meta = await listOnce(META_LIST);
  const after = await stats();
  const sample = await custom.getNamespacedCustomObject({ group, version: 'v1', namespace: 'bench', plural: 'items', name: 'item-000001' });
  const objectBytes = Buffer.byteLength(JSON.stringify(sample));
  const perObject = (loaded.memory.heapUsed - idle.memory.heapUsed) / OBJECTS;

  console.log(`simulator scale benchmark: ${OBJECTS} objects of ~2 KB, ${WATCHES} metadata watches open (${after.openWatches} at the end)`);
  console.log(
    `  create   ${(createMs / 1000).toFixed(1)} s, ${(OBJECTS / (createMs / 1000)).toFixed(0)} objects/s (fetch, ${CONCURRENCY} in flight)`,
  );
  console.log(`  watches  ${received} events received (${(received / Math.max(1, WATCHES)).toFixed(0)} per watch)`);
  for (const [name, r] of [
    ['list full', full],
    ['list meta', meta],
  ] as const) {
    console.log(
      `  ${name} ${r.items} items in ${r.pages} pages of ${PAGE}: ${(r.ms / 1000).toFixed(2)} s, page p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`,
    );
  }
  console.log(`  simulator RSS idle ${mb(idle.memory.rss)}, loaded ${mb(loaded.memory.rss)}, after lists ${mb(after.memory.rss)}`);
  console.log(
    `  simulator heap used ${mb(loaded.memory.heapUsed)}: ${(perObject / 1024).toFixed(2)} KB per object = ${(perObject / objectBytes).toFixed(2)}× its JSON (${(objectBytes / 1024).toFixed(2)} KB with managedFields), event history included`,
  );
  for (const c of controllers) c.abort();
} finally {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
}
