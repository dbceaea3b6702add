// `conveyor watch` as a real child process against the simulator and a private Redis: readiness, metrics, first sync, restart, leader election, manual enqueue.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ConfigInput,
  createLogger,
  createRedisConnection,
  done,
  formatKey,
  type KubeObject,
  type NewObject,
  type ObjectKey,
  type QueueWorker,
  type RequestReason,
  startQueueWorker,
  WatchCursorStore,
} from '@conveyor/shared';
import { hashToken } from '@conveyor/watcher/api/auth';
import { shardOf } from '@conveyor/watcher/sharding';
import type { Widget } from '../../examples/widgets/controller.ts';
import { CONTROLLER_MODULE, startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

const BIN = new URL('../../bin/conveyor.mjs', import.meta.url).pathname;

interface WatchProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
  get(path: string): Promise<{ status: number; body: string }>;
  metric(line: RegExp): Promise<number | undefined>;
}

/** Every request a test worker took from the queue, in order. */
interface Recorder {
  seen: { key: string; reason: RequestReason; at: number }[];
  count(key: string): number;
  close(): Promise<void>;
}

describe('conveyor watch (child processes)', () => {
  let dir: string;
  const processes: WatchProcess[] = [];
  const worlds: WidgetWorld[] = [];
  const recorders: Recorder[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-watch-'));
  });
  after(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    for (const r of recorders) await r.close();
    for (const w of worlds) await w.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function world(settings: ConfigInput = {}): Promise<WidgetWorld> {
    const w = await startWidgetWorld(settings);
    worlds.push(w);
    return w;
  }

  /** Spawns `conveyor watch` and resolves once it serves HTTP (not once it is synced). */
  async function spawnWatch(
    w: WidgetWorld,
    args: string[] = [],
    extra: ConfigInput = {},
    env: Record<string, string> = {},
  ): Promise<WatchProcess> {
    const config = w.writeConfigFile(dir, { log: { level: 'info' }, ...extra });
    const child = spawn(process.execPath, [BIN, 'watch', '--controller', CONTROLLER_MODULE, '--config', config, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const started: Partial<WatchProcess> = { child, output: () => output, exited };
    processes.push(started as WatchProcess);
    await waitFor(
      `watcher ${child.pid} to serve HTTP (output so far: ${output.slice(-800)})`,
      () => /"url":"(http:\/\/[^"]+)"/.test(output) || child.exitCode !== null,
      30_000,
    );
    assert.equal(child.exitCode, null, `watcher exited early: ${output}`);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(output)?.[1] as string;
    const get = async (path: string) => {
      const response = await fetch(url + path);
      return { status: response.status, body: await response.text() };
    };
    return Object.assign(started, {
      url,
      get,
      async metric(line: RegExp) {
        const { body } = await get('/metrics');
        for (const l of body.split('\n')) {
          if (l.startsWith('#')) continue;
          const [series, value] = l.split(' ');
          if (series !== undefined && line.test(series)) return Number(value);
        }
        return undefined;
      },
    }) as WatchProcess;
  }

  function record(w: WidgetWorld): Recorder {
    const seen: Recorder['seen'] = [];
    const worker: QueueWorker = startQueueWorker({
      controller: 'widgets',
      redis: w.config.redis,
      queue: w.config.queue,
      concurrency: 20,
      processor: async (request) => {
        seen.push({ key: `${request.key.namespace}/${request.key.name}`, reason: request.reason, at: Date.now() });
        return done;
      },
    });
    const recorder: Recorder = {
      seen,
      count: (key) => seen.filter((s) => s.key === key).length,
      close: () => worker.close(1_000),
    };
    recorders.push(recorder);
    return recorder;
  }

  it('is not ready before its first list, then ready; enqueues each Widget once; serves its metrics', async () => {
    const w = await world();
    const keys = await w.createWidgets(300);
    // Hold every API request: the watcher serves HTTP but cannot have listed.
    w.sim.faults.pause();
    const watch = await spawnWatch(w, [], { watcher: { pageSize: 50 } });
    assert.equal((await watch.get('/healthz')).status, 200);
    const before = await watch.get('/readyz');
    assert.equal(before.status, 503, before.body);
    w.sim.faults.resume();
    await waitFor('/readyz to answer 200', async () => (await watch.get('/readyz')).status === 200, 30_000, 100);

    const metrics = (await watch.get('/metrics')).body;
    assert.match(metrics, /^# HELP conveyor_watch_events_total /m);
    assert.match(metrics, /^# TYPE conveyor_watch_events_total counter$/m);
    assert.match(metrics, /^# TYPE process_resident_memory_bytes gauge$/m, 'default process metrics');
    assert.equal(await watch.metric(/^conveyor_watch_enqueued_total\{controller="widgets",reason="event"\}$/), keys.length);
    const depth = await w.queue.getDepth();
    assert.equal(depth.waiting + depth.prioritized, keys.length, JSON.stringify(depth));

    const api = await fetch(`${watch.url}/v1/reconcile`, { method: 'POST', body: '{}' });
    assert.equal(api.status, 404, 'no manual-enqueue API without tokenFile or tokenReview');

    const recorder = record(w);
    await waitFor('the queue to be drained', () => recorder.seen.length >= keys.length, 30_000, 100);
    // Anything enqueued twice would show up as a second run now that the first has finished.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(recorder.seen.length, keys.length);
    for (const key of keys) assert.equal(recorder.count(`${key.namespace}/${key.name}`), 1, formatKey(key));

    watch.child.kill('SIGINT');
    assert.equal(await watch.exited, 0, watch.output());
  });

  it('after a SIGKILL and a restart, enqueues every Widget changed while it was down, from the cursor in Redis, and not the rest', async () => {
    const w = await world();
    const keys = await w.createWidgets(100);
    const recorder = record(w);
    const a = await spawnWatch(w);
    await waitFor('the first sync to be reconciled', () => recorder.seen.length >= keys.length, 30_000, 100);
    const connection = createRedisConnection(w.config.redis, { logger: createLogger({ level: 'silent' }) });
    const cursor = new WatchCursorStore(connection, { prefix: w.config.redis.prefix, controller: 'widgets' });
    try {
      await waitFor('the cursor to be saved', async () => (await cursor.get('widgets.example.com|all')) !== undefined, 15_000, 100);
    } finally {
      connection.disconnect();
    }

    const lastWrite = new Map<string, number>();
    const edit = async (i: number) => {
      const key = keys[i] as ObjectKey;
      await w.client.patch(key, { type: 'merge', body: { spec: { size: 1_000 + i } } });
      lastWrite.set(`default/${key.name}`, Date.now());
    };
    // Edits while it runs, then the SIGKILL, then edits and new Widgets while it is down.
    for (let i = 0; i < 10; i += 1) await edit(i);
    a.child.kill('SIGKILL');
    await a.exited;
    for (let i = 5; i < 40; i += 1) await edit(i);
    for (let i = 0; i < 10; i += 1) {
      await w.client.create<Widget>(WIDGETS, widget(`new-${i}`));
      lastWrite.set(`default/new-${i}`, Date.now());
    }

    const b = await spawnWatch(w);
    const missing = () => [...lastWrite].filter(([key, at]) => !recorder.seen.some((s) => s.key === key && s.at >= at)).map(([key]) => key);
    await waitFor('every change to be reconciled after its last write', () => missing().length === 0, 30_000, 100).catch(() => {
      assert.fail(`not reconciled after their last write: ${missing().join(', ')}`);
    });
    assert.equal((await b.get('/readyz')).status, 200);
    // Resumed, not started afresh: the Widgets nobody touched are not enqueued again.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let i = 40; i < keys.length; i += 1) assert.equal(recorder.count(`default/w-${i}`), 1, `w-${i}`);
    assert.ok(
      ((await b.metric(
        /^conveyor_watch_events_total\{controller="widgets",resource="widgets.example.com",type="LISTED",decision="drop",reason="unchanged"\}$/,
      )) ?? 0) >= 60,
      'the restarted watcher judged the untouched Widgets unchanged since its cursor',
    );
  });

  it('POST /v1/reconcile with a token file: 401 without a token or with a wrong one, 400 naming a bad field, 202 and the key queued with a good one', async () => {
    const w = await world();
    await w.createWidgets(5);
    const token = randomBytes(24).toString('base64url');
    const tokenFile = join(dir, 'tokens.yaml');
    writeFileSync(tokenFile, `tokens:\n  - user: ops\n    sha256: ${hashToken(token)}\n`);
    const recorder = record(w);
    const watch = await spawnWatch(w, [], { api: { tokenFile } });
    await waitFor('the first sync to be reconciled', () => recorder.seen.length >= 5, 30_000, 100);
    const post = (body: unknown, bearer?: string) =>
      fetch(`${watch.url}/v1/reconcile`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
        body: JSON.stringify(body),
      });
    assert.equal((await post({ namespace: 'default', name: 'w-3' })).status, 401);
    assert.equal((await post({ namespace: 'default', name: 'w-3' }, 'not-the-token')).status, 401);
    const bad = await post({ namespace: 'Not A Namespace', name: 'w-3' }, token);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { field: string }).field, 'namespace');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(recorder.seen.length, 5, 'refused requests enqueue nothing');

    const good = await post({ namespace: 'default', name: 'w-3' }, token);
    assert.equal(good.status, 202, await good.text());
    await waitFor(
      'the manual request to run',
      () => recorder.seen.some((s) => s.key === 'default/w-3' && s.reason === 'manual'),
      15_000,
      50,
    );
    assert.equal(await watch.metric(/^conveyor_watch_enqueued_total\{controller="widgets",reason="manual"\}$/), 1);
    assert.match(watch.output(), /"audit":"manual-reconcile"/);
    assert.ok(!watch.output().includes(token), 'the token is never logged');
  });

  it('--shard ordinal/2 in a StatefulSet pod named …-1 enqueues exactly the keys of shard 1', async () => {
    const w = await world();
    const keys = await w.createWidgets(60);
    const recorder = record(w);
    const watch = await spawnWatch(w, ['--shard', 'ordinal/2'], {}, { HOSTNAME: 'conveyor-watcher-1' });
    assert.match(watch.output(), /"shard":"1\/2"/);
    const mine = keys.filter((k) => shardOf(k.namespace, k.name, 2) === 1).map((k) => `${k.namespace}/${k.name}`);
    assert.ok(mine.length > 10 && mine.length < 50, `shard 1 holds ${mine.length} of 60`);
    await waitFor('its shard to be reconciled', () => recorder.seen.length >= mine.length, 30_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual(recorder.seen.map((s) => s.key).sort(), mine.sort());
  });

  it('with --leader-elect only the leader enqueues; after a SIGKILL the standby enqueues new events within the lease duration + 2 s', async () => {
    const w = await world();
    await w.createWidgets(50);
    const recorder = record(w);
    const leaseMs = 3_000;
    const options = ['--leader-elect'];
    const extra: ConfigInput = { watcher: { leaseDuration: '3s' } };
    const a = await spawnWatch(w, options, extra);
    await waitFor(
      'the first watcher to lead and sync',
      async () => (await leader(a)) === 1 && (await a.get('/readyz')).status === 200,
      30_000,
      100,
    );
    const b = await spawnWatch(w, options, extra);
    await waitFor('the first sync to be reconciled', () => recorder.seen.length >= 50, 30_000, 100);
    const created = await w.client.create<Widget>(WIDGETS, widget('while-both-run'));
    await waitFor('the new Widget to be enqueued', () => recorder.count('default/while-both-run') === 1, 15_000, 50);
    // The cursor is saved every second: kill the leader only once it covers everything enqueued so far,
    // so that what the standby enqueues again is exactly what the assertion below may see.
    const connection = createRedisConnection(w.config.redis, { logger: createLogger({ level: 'silent' }) });
    const cursor = new WatchCursorStore(connection, { prefix: w.config.redis.prefix, controller: 'widgets' });
    try {
      await waitFor(
        'the leader to save a cursor past the new Widget',
        async () => Number((await cursor.get('widgets.example.com|all')) ?? 0) >= Number(created.metadata.resourceVersion),
        15_000,
        100,
      );
    } finally {
      connection.disconnect();
    }

    assert.equal(await leader(b), 0, 'the second watcher is a standby');
    assert.equal((await b.get('/readyz')).body, 'standby\n');
    assert.equal(await b.metric(/^conveyor_watch_enqueued_total/), undefined, 'a standby runs no watcher');
    assert.equal(
      await a.metric(/^conveyor_watch_enqueued_total\{controller="widgets",reason="event"\}$/),
      51,
      'the leader enqueued everything',
    );

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    await w.client.create<Widget>(WIDGETS, widget('after-the-crash'));
    await waitFor('the standby to take over and enqueue', () => recorder.count('default/after-the-crash') === 1, 30_000, 50);
    const tookMs = (recorder.seen.find((s) => s.key === 'default/after-the-crash')?.at ?? 0) - killedAt;
    assert.ok(tookMs <= leaseMs + 2_000, `the standby enqueued ${tookMs} ms after the leader died (lease ${leaseMs} ms)`);
    assert.equal(await leader(b), 1);
    // It resumed from the leader's cursor: the first sync is not enqueued again.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let i = 0; i < 50; i += 1) assert.equal(recorder.count(`default/w-${i}`), 1, `w-${i}`);
  });

  it('runs the autoscaler and the manual-enqueue API on the leader only; a standby answers the API with 503 and Retry-After', async () => {
    const w = await world();
    await w.createWidgets(40);
    const deployments = { group: 'apps', version: 'v1', plural: 'deployments' };
    await w.client.create(deployments, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'conveyor-worker', namespace: 'default' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'w' } },
        template: { metadata: { labels: { app: 'w' } }, spec: { containers: [{ name: 'w', image: 'conveyor' }] } },
      },
    });
    const token = randomBytes(24).toString('base64url');
    const tokenFile = join(dir, 'tokens-autoscaler.yaml');
    writeFileSync(tokenFile, `tokens:\n  - user: ops\n    sha256: ${hashToken(token)}\n`);
    const extra: ConfigInput = {
      watcher: { leaseDuration: '30s' },
      api: { tokenFile },
      worker: { concurrency: 1 },
      apiBudget: { qps: 1_000 },
      autoscaler: {
        enabled: true,
        deployment: 'default/conveyor-worker',
        minWorkers: 1,
        maxWorkers: 4,
        latencyTarget: '1s',
        defaultReconcile: '1s',
        interval: '500ms',
      },
    };
    const a = await spawnWatch(w, ['--leader-elect'], extra);
    await waitFor(
      'the first watcher to lead and sync',
      async () => (await leader(a)) === 1 && (await a.get('/readyz')).status === 200,
      30_000,
      100,
    );
    const b = await spawnWatch(w, ['--leader-elect'], extra);

    // 40 requests waiting, nobody working them, 1 s each against a 1 s target: as many workers as allowed.
    type Scaled = KubeObject & { spec?: { replicas?: number } };
    const replicas = async () =>
      (await w.client.get<Scaled>({ ...deployments, namespace: 'default', name: 'conveyor-worker' })).spec?.replicas;
    await waitFor('the leader to scale the worker Deployment to its maximum', async () => (await replicas()) === 4, 20_000, 200);
    assert.equal(await a.metric(/^conveyor_desired_workers\{controller="widgets"\}$/), 4);
    assert.equal(await leader(b), 0);
    assert.equal(await b.metric(/^conveyor_desired_workers/), undefined, 'the standby runs no autoscaler');

    const post = (p: WatchProcess) =>
      fetch(`${p.url}/v1/reconcile`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ namespace: 'default', name: 'w-7' }),
      });
    const refused = await post(b);
    assert.equal(refused.status, 503, await refused.text());
    assert.ok(refused.headers.get('retry-after') !== null, 'the caller is told to retry');
    assert.equal((await post(a)).status, 202);
  });

  it('on SIGTERM exits 0 and releases the lease, so a standby takes over long before the lease would expire', async () => {
    const w = await world();
    await w.createWidgets(20);
    const recorder = record(w);
    const options = ['--leader-elect'];
    const extra: ConfigInput = { watcher: { leaseDuration: '60s' } };
    const a = await spawnWatch(w, options, extra);
    await waitFor(
      'the first watcher to lead and sync',
      async () => (await leader(a)) === 1 && (await a.get('/readyz')).status === 200,
      30_000,
      100,
    );
    const b = await spawnWatch(w, options, extra);
    await waitFor('the first sync to be reconciled', () => recorder.seen.length >= 20, 30_000, 100);
    const lease = {
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: 'default',
      name: 'conveyor-widgets-watcher',
    };
    type Lease = { spec?: { holderIdentity?: string | null } };
    const holder = (await w.client.get<Lease & KubeObject>(lease)).spec?.holderIdentity;
    assert.ok(typeof holder === 'string' && holder !== '', 'the leader holds the lease');

    const stoppedAt = Date.now();
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 0, a.output());
    assert.match(a.output(), /released the lease/);
    await waitFor('the standby to lead', async () => (await leader(b)) === 1, 30_000, 100);
    const tookMs = Date.now() - stoppedAt;
    assert.ok(tookMs < 30_000, `took ${tookMs} ms with a 60 s lease`);
    const next = (await w.client.get<Lease & KubeObject>(lease)).spec?.holderIdentity;
    assert.ok(typeof next === 'string' && next !== '' && next !== holder, `the lease moved from ${holder} to ${next}`);
    await w.client.create<Widget>(WIDGETS, widget('after-the-handover'));
    await waitFor('the new leader to enqueue', () => recorder.count('default/after-the-handover') === 1, 30_000, 50);
  });
});

async function leader(p: WatchProcess): Promise<number | undefined> {
  return await p.metric(/^leader_election_master_status\{name="conveyor-widgets-watcher"\}$/);
}

function widget(name: string): NewObject<Widget> {
  return { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name, namespace: 'default' }, spec: { color: 'red', size: 1 } };
}
