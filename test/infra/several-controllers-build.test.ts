// `conveyor build` for two controllers in one deployment, enforced: the watcher and the workers, holding only what the
// generated RBAC grants, serve widgets and gadgets on the simulator, and `conveyor status` shows both.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Config,
  createKubeConfig,
  createLogger,
  KubeApiClient,
  KubeApiError,
  type KubeObject,
  loadConfig,
  unlimitedBudget,
} from '@conveyor/shared';
import { type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import { startWorkerSet, type WorkerSet } from '@conveyor/workers/worker-set';
import { parse } from 'yaml';
import { manifestFiles } from '../../cli/build/manifests.ts';
import controllers, { GADGETS, type Item, WIDGETS } from '../fixtures/two-controllers.ts';
import { spawnConveyor } from '../support/conveyor-process.ts';
import { authorizationRulesFromRbac, type KubeDoc, noKubectl, renderKustomization } from '../support/kustomize.ts';
import { RedisServer } from '../support/redis-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { repoRoot } from '../support/widget-build.ts';

const WATCHER = 'system:serviceaccount:conveyor-system:conveyor-watcher';
const WORKER = 'system:serviceaccount:conveyor-system:conveyor-worker';
const FIXTURE = fileURLToPath(new URL('../fixtures/two-controllers.ts', import.meta.url));

function renderTree(): KubeDoc[] {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-two-'));
  const files = manifestFiles({
    controller: controllers,
    image: 'registry.example/two:1.0.0',
    namespace: 'conveyor-system',
    shards: 2,
    functionName: 'conveyor-widgets-gadgets-prod-reconcile',
    region: 'eu-west-1',
  });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return renderKustomization(join(dir, 'overlays', 'containers'));
}

/** `conveyor <args>` run to its end: exit code and output. */
async function conveyor(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const run = spawnConveyor(args);
  const exit = await run.exited;
  return { status: exit.code, stdout: run.stdout(), stderr: run.stderr() };
}

describe('conveyor build with two controllers: one deployment, RBAC the union of theirs', { skip: noKubectl }, () => {
  let sim: KubeSimulator;
  let redis: RedisServer;
  let docs: KubeDoc[];
  let config: Config;
  let watcher: WatcherHandle | undefined;
  let workers: WorkerSet<ContainerWorker> | undefined;
  let admin: KubeApiClient;

  before(async () => {
    docs = renderTree();
    sim = await startKubeSimulator({
      tokens: [
        'admin-token',
        { token: 'watcher-token', username: WATCHER, groups: ['system:serviceaccounts', 'system:authenticated'] },
        { token: 'worker-token', username: WORKER, groups: ['system:serviceaccounts', 'system:authenticated'] },
      ],
      authorization: [{ users: ['admin'] }, ...authorizationRulesFromRbac(docs)],
    });
    redis = await RedisServer.start();
    admin = new KubeApiClient({ kubeConfig: sim.kubeConfig(), budget: unlimitedBudget });
    const CRDS = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
    await admin.create(CRDS, parse(readFileSync(`${repoRoot}examples/widgets/widget-crd.yaml`, 'utf8')));
    await admin.create(CRDS, parse(readFileSync(`${repoRoot}test/fixtures/gadget-crd.yaml`, 'utf8')));
    for (const name of ['conveyor-system'])
      await admin.create({ group: '', version: 'v1', plural: 'namespaces' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    config = loadConfig({
      env: {},
      overrides: {
        'redis.url': redis.url,
        'http.host': '127.0.0.1',
        'http.port': 0,
        'watcher.leaderElect': true,
        'watcher.leaseNamespace': 'conveyor-system',
        'queue.backoff.base': '50ms',
        'log.level': 'silent',
      },
    });
  });
  after(async () => {
    await workers?.close(1_000);
    await watcher?.close();
    await sim?.close();
    await redis?.close();
  });

  it('grants the watcher one Lease and list/watch on both resources, the workers get/patch on both and their status', () => {
    const rules = (name: string) => docs.find((d) => d.kind.endsWith('Role') && d.metadata.name === name)?.rules ?? [];
    const watched = rules('conveyor-widgets-gadgets-watcher').filter((r) => r.verbs.includes('watch'));
    assert.deepEqual(
      watched.flatMap((r) => r.resources),
      ['gadgets', 'widgets'],
    );
    const leases = rules('conveyor-watcher').flatMap((r) => r.resourceNames ?? []);
    assert.deepEqual(leases, ['conveyor-widgets-gadgets-watcher']);
    const worker = rules('conveyor-widgets-gadgets-worker');
    const patched = worker.filter((r) => r.verbs.join() === 'get,patch').flatMap((r) => r.resources);
    assert.deepEqual(patched.sort(), ['gadgets', 'gadgets/status', 'widgets', 'widgets/status']);
    for (const rule of worker) assert.ok(!rule.verbs.includes('list') && !rule.verbs.includes('*'), JSON.stringify(rule));
  });

  it('runs both controllers with only those rights: objects of both kinds converge, and `conveyor status` shows both queues', async () => {
    const kube = (token: string) => createKubeConfig({ server: sim.url, token, insecureSkipTlsVerify: true, inCluster: false });
    const logger = createLogger({ level: 'silent' });
    watcher = await runWatcher({ controller: controllers, config, logger, kubeConfig: kube('watcher-token') });
    workers = await startWorkerSet({
      names: controllers.map((c) => c.name),
      config,
      logger,
      http: false,
      start: (name, own) =>
        startContainerWorker({
          controller: controllers.find((c) => c.name === name) as (typeof controllers)[number],
          config: own,
          kubeConfig: kube('worker-token'),
          logger,
          http: false,
        }),
    });
    await waitFor('the watcher leading and synced', () => watcher?.isReady() === true, 30_000);
    const item = (kind: string, name: string) => ({
      apiVersion: 'example.com/v1',
      kind,
      metadata: { name, namespace: 'default' },
      spec: { size: 1 },
    });
    for (let i = 0; i < 5; i += 1) {
      await admin.create(WIDGETS, item('Widget', `w-${i}`));
      await admin.create(GADGETS, item('Gadget', `g-${i}`));
    }
    await admin.delete({ ...GADGETS, namespace: 'default', name: 'g-0' });
    const converged = async (resource: typeof WIDGETS, count: number) => {
      const list = await admin.list<Item>(resource, 'default');
      return list.items.length === count && list.items.every((o) => o.status?.observedGeneration === o.metadata?.generation);
    };
    await waitFor('widgets converged', () => converged(WIDGETS, 5), 30_000);
    await waitFor('gadgets converged, g-0 deleted through its finalizer', () => converged(GADGETS, 4), 30_000);
    // One exposition: each metric family once, with a series per controller.
    const metrics = await (await fetch(`${watcher.url}/metrics`)).text();
    const families = [...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(
      families.filter((name, i) => families.indexOf(name) !== i),
      [],
      'no metric family appears twice',
    );
    for (const name of ['widgets', 'gadgets']) {
      assert.match(metrics, new RegExp(`^conveyor_watch_enqueued_total\\{controller="${name}",reason="event"\\} [1-9]`, 'm'));
      assert.match(metrics, new RegExp(`^conveyor_api_requests_total\\{controller="${name}",verb="watch",code="2xx"\\} [1-9]`, 'm'));
    }
    assert.match(metrics, /^leader_election_master_status\{name="conveyor-widgets-gadgets-watcher"\} 1$/m);
    // The workers may not list: least privilege holds for both controllers.
    const asWorker = new KubeApiClient({ kubeConfig: kube('worker-token'), budget: unlimitedBudget });
    await assert.rejects(asWorker.list<KubeObject>(WIDGETS, 'default'), (e: unknown) => e instanceof KubeApiError && e.statusCode === 403);

    const dir = mkdtempSync(join(tmpdir(), 'conveyor-two-status-'));
    const file = join(dir, 'conveyor.json');
    writeFileSync(file, JSON.stringify({ redis: { url: redis.url } }));
    const status = await conveyor(['status', '--json', '--config', file, '--controller', FIXTURE]);
    assert.equal(status.status, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { controllers: { controller: string; backlog: number; depth: { parked: number } }[] };
    assert.deepEqual(
      report.controllers.map((c) => [c.controller, c.backlog, c.depth.parked]),
      [
        ['widgets', 0, 0],
        ['gadgets', 0, 0],
      ],
    );
    const text = await conveyor(['status', '--config', file, '--controller', FIXTURE]);
    assert.match(text.stdout, /^controller widgets$/m);
    assert.match(text.stdout, /^controller gadgets$/m);
    const one = await conveyor(['status', '--json', '--config', file, '--controller', FIXTURE, '--name', 'gadgets']);
    assert.equal((JSON.parse(one.stdout) as { controller: string }).controller, 'gadgets');
  });
});
