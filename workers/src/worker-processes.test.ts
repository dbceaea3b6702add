import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput, ObjectKey } from '@conveyor/shared';
import { BLOCK_ANNOTATION, FLOATING_REJECTION_ANNOTATION } from '@conveyor/test/fixtures/misbehaving-controller';
import type { Widget } from '../../examples/widgets/controller.ts';
import { CONTROLLER_MODULE, startWidgetWorld, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

const BIN = new URL('../../bin/conveyor.mjs', import.meta.url).pathname;
const MISBEHAVING_MODULE = new URL('../../test/fixtures/misbehaving-controller.ts', import.meta.url).pathname;
const WIDGETS = { group: 'example.com', version: 'v1', plural: 'widgets' };

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Worker processes (conveyor worker)', () => {
  let dir: string;
  const started: WorkerProcess[] = [];
  const worlds: WidgetWorld[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-workers-'));
  });
  after(async () => {
    for (const w of started) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(started.map((w) => w.exited));
    for (const world of worlds) await world.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function world(settings: ConfigInput): Promise<WidgetWorld> {
    const w = await startWidgetWorld(settings);
    worlds.push(w);
    return w;
  }

  /**
   * The misbehaving controller records what it read in status fields of its own; the API server prunes fields
   * the Widget schema does not declare, so declare them in this world's CRD.
   */
  async function declareSeenFields(w: WidgetWorld): Promise<void> {
    const crd = {
      group: 'apiextensions.k8s.io',
      version: 'v1',
      plural: 'customresourcedefinitions',
      namespace: '',
      name: 'widgets.example.com',
    };
    const status = '/spec/versions/0/schema/openAPIV3Schema/properties/status/properties';
    await w.client.patch(crd, {
      type: 'json',
      operations: [
        { op: 'add', path: `${status}/seenSize`, value: { type: 'integer' } },
        { op: 'add', path: `${status}/writer`, value: { type: 'integer' } },
      ],
    });
  }

  /** Spawns `conveyor worker` as a real child process and resolves once it takes requests. */
  async function spawnWorker(w: WidgetWorld, module = CONTROLLER_MODULE, extra: ConfigInput = {}): Promise<WorkerProcess> {
    const config = w.writeConfigFile(dir, { log: { level: 'info' }, ...extra });
    const child = spawn(process.execPath, [BIN, 'worker', '--controller', module, '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const worker = { child, output: () => output, exited };
    started.push(worker);
    await waitFor(
      `worker ${child.pid} to start (output so far: ${output.slice(-500)})`,
      () => output.includes('"worker started"') || child.exitCode !== null,
      20_000,
    );
    assert.equal(child.exitCode, null, `worker exited early: ${output}`);
    return worker;
  }

  async function observed(w: WidgetWorld, keys: readonly ObjectKey[]): Promise<number> {
    let n = 0;
    for (const key of keys) {
      const widget = await w.client.get<Widget>(key);
      if (widget.status?.observedGeneration === widget.metadata.generation) n += 1;
    }
    return n;
  }

  it('finishes a request on another worker after the first is SIGKILLed mid-reconcile', async () => {
    const w = await world({ queue: { lockDuration: '2s', stalledInterval: '1s' } });
    const [key] = (await w.createWidgets(1)) as [ObjectKey];
    w.sim.faults.latency(400);
    const first = await spawnWorker(w);
    await w.enqueue([key]);
    await waitFor('the first worker to take the request', async () => (await w.queue.getDepth()).active === 1, 10_000, 20);
    first.child.kill('SIGKILL');
    await first.exited;
    assert.equal(await observed(w, [key]), 0, 'the reconcile was cut before it finished');
    await spawnWorker(w);
    await waitFor('the request to complete on the second worker', async () => (await observed(w, [key])) === 1, 20_000, 200);
    w.sim.faults.latency(0);
    // The status is visible while the answer to its write is still on its way (the injected latency), and the
    // worker records that write as its own before it completes the job: wait for the job, then nothing is left.
    const idle = async () => {
      const depth = await w.queue.getDepth();
      return depth.active + depth.waiting + depth.parked === 0;
    };
    await waitFor('the job completed and nothing left in the queue', idle, 10_000, 50);
  });

  it('on SIGTERM finishes running reconciles, exits 0 and leaves no job locked', async () => {
    const w = await world({ queue: { lockDuration: '20s', stalledInterval: '20s' }, worker: { concurrency: 4, shutdownGrace: '15s' } });
    const keys = await w.createWidgets(24);
    w.sim.faults.latency(150);
    const worker = await spawnWorker(w);
    await w.enqueue(keys);
    await waitFor('reconciles to be running', async () => (await w.queue.getDepth()).active >= 3, 10_000, 20);
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0, worker.output());
    const depth = await w.queue.getDepth();
    assert.equal(depth.active, 0, 'no job is left active (locked)');
    assert.equal(depth.parked, 0);
    // Every reconcile that started (it adds the finalizer first) also finished (it writes status last).
    for (const key of keys) {
      const widget = await w.client.get<Widget>(key);
      if (widget.metadata.finalizers !== undefined) assert.equal(widget.status?.observedGeneration, 1, `${key.name} was cut mid-reconcile`);
    }
    const done = await observed(w, keys);
    assert.ok(done > 0 && done < keys.length, `SIGTERM came mid-run (${done} of ${keys.length} done)`);
    assert.equal(depth.waiting + depth.prioritized, keys.length - done, 'the rest still wait in the queue');
    // No stalled job: a new worker takes the rest at once instead of after the 20 s lock expiry.
    w.sim.faults.latency(0);
    await spawnWorker(w);
    await waitFor('the rest reconciled by a new worker', async () => (await observed(w, keys)) === keys.length, 10_000, 200);
  });

  it('fails the stale write of a run that lost its lock, and writes back nothing it read', async () => {
    // Concurrency 1: a blocked worker with free slots would sit in BZPOPMIN on the queue's marker and
    // swallow the wake-up meant for the other worker (which then finds the job only after its drain delay).
    const w = await world({ queue: { lockDuration: '1s', stalledInterval: '500ms' }, worker: { concurrency: 1 } });
    await declareSeenFields(w);
    const key = { ...WIDGETS, namespace: 'default', name: 'blocker' };
    const release = join(dir, 'release-the-blocked-run');
    await w.client.create<Widget>(WIDGETS, {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'blocker', namespace: 'default', annotations: { [BLOCK_ANNOTATION]: release } },
      spec: { size: 1 },
    });
    const stale = await spawnWorker(w, MISBEHAVING_MODULE);
    await w.enqueue([key]);
    // The first run reads size 1 and blocks its event loop, so its queue lock expires.
    await waitFor('the first run to block', () => stale.output().includes('blocking the event loop'), 10_000, 20);
    await w.client.patch(key, { type: 'merge', body: { spec: { size: 2 } } });
    const fresh = await spawnWorker(w, MISBEHAVING_MODULE);
    type Seen = Widget & { status?: { seenSize?: number; writer?: number } };
    await waitFor(
      'the second run (after the lock expired) to write',
      async () => (await w.client.get<Seen>(key)).status?.seenSize === 2,
      20_000,
      100,
    );
    assert.equal((await w.client.get<Seen>(key)).status?.writer, fresh.child.pid);
    // Now let the first run go on: it still holds what it read (size 1) and tries to write it.
    writeFileSync(release, '');
    await waitFor('the stale run to finish', () => stale.output().includes('CONFLICT'), 15_000, 100);
    assert.ok(
      w.sim.counters().entries.some((e) => e.verb === 'patch' && e.resource === 'widgets/status' && e.code === 409),
      'the stale status write was refused with 409',
    );
    const final = await w.client.get<Seen>(key);
    assert.equal(final.status?.seenSize, 2, 'the stale run wrote back what it read');
    assert.equal(final.status?.writer, fresh.child.pid);
  });

  it('survives a reconcile that leaves a rejected promise behind, and says so in its log', async () => {
    const w = await world({});
    await declareSeenFields(w);
    const key = { ...WIDGETS, namespace: 'default', name: 'floater' };
    await w.client.create<Widget>(WIDGETS, {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'floater', namespace: 'default', annotations: { [FLOATING_REJECTION_ANNOTATION]: 'yes' } },
      spec: { size: 5 },
    });
    const worker = await spawnWorker(w, MISBEHAVING_MODULE);
    await w.enqueue([key]);
    type Seen = Widget & { status?: { seenSize?: number } };
    await waitFor('the reconcile to write', async () => (await w.client.get<Seen>(key)).status?.seenSize === 5, 10_000, 100);
    await waitFor('the rejection to be logged', () => worker.output().includes('unhandled promise rejection'), 5_000);
    assert.equal(worker.child.exitCode, null, 'the worker is still running');
  });

  it('four workers sharing a 50 qps budget stay at 50 qps; a 429 pauses them for its Retry-After', async (t) => {
    const w = await world({ apiBudget: { qps: 50, burst: 5 }, worker: { concurrency: 10 } });
    const keys = await w.createWidgets(600);
    for (let i = 0; i < 4; i++) await spawnWorker(w);
    await w.enqueue(keys);
    await sleep(2_000);
    const t0 = Date.now();
    const c0 = w.sim.counters().total;
    await sleep(20_000);
    const rate = ((w.sim.counters().total - c0) * 1_000) / (Date.now() - t0);
    t.diagnostic(`observed ${rate.toFixed(1)} API requests/s with a 50 qps budget shared by 4 workers`);
    assert.ok(rate <= 55, `rate ${rate.toFixed(1)} qps is above 50 + 10 %`);
    // Not a goal, a sign the test measured something: 600 Widgets keep four workers busy for the whole window.
    assert.ok(rate >= 30, `rate ${rate.toFixed(1)} qps: the workers hardly used the budget`);

    w.sim.faults.throttle({ count: 1, retryAfterSeconds: 4 });
    const samples: { at: number; total: number; throttled: number }[] = [];
    const end = Date.now() + 8_000;
    while (Date.now() < end) {
      const c = w.sim.counters();
      samples.push({ at: Date.now(), total: c.total, throttled: c.byCode['429'] ?? 0 });
      await sleep(25);
    }
    const hit = samples.find((s) => s.throttled > 0);
    assert.ok(hit !== undefined, 'the injected 429 was served');
    const at = (ms: number) => samples.findLast((s) => s.at <= hit.at + ms)?.total ?? 0;
    // Requests already on the wire when the 429 came may still land in the first second.
    const duringPause = at(3_600) - at(1_000);
    const afterPause = at(7_500) - at(4_300);
    t.diagnostic(`requests 1–3.6 s after a 429 with Retry-After 4: ${duringPause}; 4.3–7.5 s after: ${afterPause}`);
    assert.equal(duringPause, 0, 'requests went out during the Retry-After pause');
    assert.ok(afterPause > 0, 'the workers resumed after the pause');
  });
});
