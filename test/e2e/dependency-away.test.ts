// Every command while Redis is away, as a user sees it: one-shot commands fail in bounded time with one line; long-running ones honour SIGTERM at every stage and log only JSON.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ConfigInput, configSchema, ReconcileQueue } from '@conveyor/shared';
import { type ConveyorProcess, nonJsonLines, spawnConveyor } from '@conveyor/test/support/conveyor-process';
import { freePort, RedisServer } from '@conveyor/test/support/redis-server';
import { CONTROLLER_MODULE, startWidgetWorld, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

/** Generous allowance over a bound for a loaded 2-core CI machine: the bound is the behaviour, not a speed goal. */
const SLACK_MS = 15_000;
const GRACE = { worker: { shutdownGrace: '5s' }, watcher: { shutdownGrace: '5s' } } as const;

describe('while Redis is unreachable', () => {
  let dir: string;
  let configFile: string;
  let redisPort: number;
  const started: ConveyorProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-away-'));
    // Free ports nobody listens on: connecting is refused at once, as with a Redis that is down.
    redisPort = await freePort();
    const apiPort = await freePort();
    const config: ConfigInput = {
      controller: CONTROLLER_MODULE,
      redis: { url: `redis://:hunter2@127.0.0.1:${redisPort}` },
      kube: { server: `http://127.0.0.1:${apiPort}`, token: 'not-a-real-token', insecureSkipTlsVerify: true },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
      ...GRACE,
    };
    configFile = join(dir, 'conveyor.json');
    writeFileSync(configFile, JSON.stringify(config));
  });
  after(() => {
    for (const p of started) p.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[]) => {
    const p = spawnConveyor(args);
    started.push(p);
    return p;
  };

  for (const args of [['status'], ['enqueue', 'widgets', 'default/w-1'], ['parked', 'list']]) {
    it(`conveyor ${args[0]} exits 1 within its timeout with one line naming Redis`, async () => {
      const startedAt = Date.now();
      const p = run([...args, '--config', configFile, '--timeout', '2s']);
      const exit = await p.exited;
      assert.equal(exit.code, 1, p.output());
      assert.ok(exit.at - startedAt < 2_000 + SLACK_MS, `took ${exit.at - startedAt} ms`);
      assert.equal(p.stdout(), '');
      const lines = p.stderr().trim().split('\n');
      assert.equal(lines.length, 1, p.stderr());
      assert.match(
        lines[0] ?? '',
        new RegExp(
          `^conveyor ${args[0]}: Redis at redis://:\\[redacted\\]@127\\.0\\.0\\.1:${redisPort} did not answer within 2s \\(cli\\.timeout\\): connect ECONNREFUSED`,
        ),
      );
      assert.ok(!p.output().includes('hunter2'), 'the password stays out of the message');
    });
  }

  for (const command of ['watch', 'worker', 'dispatch'] as const) {
    it(`conveyor ${command} reports not-ready, logs only JSON and exits 0 within its grace period after SIGTERM`, async () => {
      const extra = command === 'dispatch' ? ['--function', 'reconcile', '--endpoint', `http://127.0.0.1:${redisPort}`] : [];
      const p = run([command, '--config', configFile, ...extra]);
      await p.waitForOutput(/Redis unreachable; retrying/);
      const url = (await p.waitForOutput(/"url":"(http:\/\/[^"]+)"/))[1];
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /Redis unreachable/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive: an unreachable Redis is no reason to restart the pod');
      const exit = await p.stop('SIGTERM');
      assert.equal(exit.code, 0, p.output());
      assert.ok(exit.afterMs < 5_000 + SLACK_MS, `exited ${exit.afterMs} ms after SIGTERM`);
      assert.deepEqual(nonJsonLines(p.stdout()), []);
      assert.equal(p.stderr(), '');
      assert.ok(!p.output().includes('worker started'), 'a worker that never reached Redis does not claim it started');
      assert.ok(!p.output().includes('hunter2'), 'the password stays out of the logs');
      const line = JSON.parse(
        p
          .stdout()
          .split('\n')
          .find((l) => l.includes('Redis unreachable')) ?? '{}',
      ) as Record<string, unknown>;
      assert.equal(line.redis, `Redis at redis://:[redacted]@127.0.0.1:${redisPort}`);
      assert.equal(line.code, 'ECONNREFUSED');
      assert.equal(typeof line.nextAttemptInMs, 'number');
    });
  }
});

describe('when Redis goes away under a running worker', () => {
  let world: WidgetWorld;
  let dir: string;
  const started: ConveyorProcess[] = [];

  before(async () => {
    world = await startWidgetWorld();
    dir = mkdtempSync(join(tmpdir(), 'conveyor-away-'));
  });
  after(async () => {
    for (const p of started) p.kill();
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startWorker(settings: ConfigInput = GRACE): Promise<ConveyorProcess> {
    const config = world.writeConfigFile(dir, { log: { level: 'info' }, ...settings });
    const p = spawnConveyor(['worker', '--controller', CONTROLLER_MODULE, '--config', config]);
    started.push(p);
    await p.waitForOutput(/"worker started"/);
    return p;
  }

  async function reconciled(name: string): Promise<void> {
    await waitFor(`${name} to be reconciled`, async () => {
      const widget = await world.client.find({ group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name });
      return (widget?.status as { observedGeneration?: number } | undefined)?.observedGeneration === widget?.metadata.generation;
    });
  }

  it('logs nothing but JSON lines through a Redis restart, and reconciles again after it', async () => {
    const worker = await startWorker();
    const [first] = await world.createWidgets(1);
    assert.ok(first !== undefined);
    await world.enqueue([first]);
    await reconciled(first.name);

    await world.redis.restart();
    await worker.waitForOutput(/"Redis reachable again"/);
    const second = await world.client.create(
      { group: 'example.com', version: 'v1', plural: 'widgets' },
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'after-restart', namespace: 'default' }, spec: { size: 1 } },
    );
    await world.enqueue([{ group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: second.metadata.name }]);
    await reconciled('after-restart');

    const exit = await worker.stop('SIGTERM');
    assert.equal(exit.code, 0);
    assert.deepEqual(nonJsonLines(worker.output()), []);
    assert.match(worker.output(), /"msg":"Redis unreachable; retrying"/);
  });

  it('exits well within its grace period after SIGTERM while Redis stays away and nothing runs', async () => {
    // Nothing to finish, so nothing to wait for: a pod that is done is not kept for its whole grace period.
    const graceMs = 20_000;
    const worker = await startWorker({ worker: { shutdownGrace: `${graceMs}ms` } });
    await world.redis.stop();
    try {
      await worker.waitForOutput(/"Redis unreachable; retrying"/);
      const exit = await worker.stop('SIGTERM');
      assert.equal(exit.code, 0, worker.output());
      assert.ok(exit.afterMs < graceMs, `exited ${exit.afterMs} ms after SIGTERM`);
      assert.deepEqual(nonJsonLines(worker.output()), []);
      assert.doesNotMatch(worker.output(), /still running after the grace period/);
    } finally {
      await world.redis.restart();
    }
  });

  it('exits 0 at the end of its grace period after SIGTERM while Redis stays away under a running reconcile', async () => {
    const worker = await startWorker();
    const keys = [];
    for (const name of ['slow-1', 'slow-2']) {
      const created = await world.client.create(
        { group: 'example.com', version: 'v1', plural: 'widgets' },
        { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name, namespace: 'default' }, spec: { size: 1 } },
      );
      keys.push({ group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: created.metadata.name });
    }
    // An API server slower than the grace period keeps the reconciles running while Redis goes away under them.
    world.sim.faults.latency(20_000);
    try {
      await world.enqueue(keys);
      // Active in Redis is not yet running in the worker (BullMQ moves the job before it calls the processor): wait for
      // the reconcile's GET to reach the API server, where the latency holds it.
      await waitFor(
        'a reconcile to be running',
        async () => (await world.queue.getDepth()).active >= 1 && world.sim.faults.delayed() >= 1,
        10_000,
        20,
      );
      await world.redis.stop();
      await worker.waitForOutput(/"Redis unreachable; retrying"/);
      const exit = await worker.stop('SIGTERM');
      assert.equal(exit.code, 0, worker.output());
      assert.ok(exit.afterMs < 5_000 + SLACK_MS, `exited ${exit.afterMs} ms after SIGTERM`);
      assert.match(
        worker.output(),
        /"jobs":\d+,"graceMs":5000,"msg":"reconciles still running after the grace period while Redis is unreachable; their requests run again once their locks expire"/,
      );
      assert.deepEqual(nonJsonLines(worker.output()), []);
    } finally {
      world.sim.faults.latency(0);
      await world.redis.restart();
    }
  });
});

describe('while the API server is unreachable', () => {
  let redis: RedisServer;
  let dir: string;
  let configFile: string;
  let apiPort: number;
  const started: ConveyorProcess[] = [];

  before(async () => {
    redis = await RedisServer.start();
    dir = mkdtempSync(join(tmpdir(), 'conveyor-away-'));
    apiPort = await freePort();
    const config: ConfigInput = {
      controller: CONTROLLER_MODULE,
      redis: { url: redis.url, prefix: 'away' },
      kube: { server: `http://127.0.0.1:${apiPort}`, token: 'not-a-real-token', insecureSkipTlsVerify: true },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
      queue: { backoff: { base: '5s' } },
      ...GRACE,
    };
    configFile = join(dir, 'conveyor.json');
    writeFileSync(configFile, JSON.stringify(config));
  });
  after(async () => {
    for (const p of started) p.kill();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('conveyor enqueue --selector exits 1 with one line naming the API server and the cause', async () => {
    const p = spawnConveyor(['enqueue', 'widgets', '--selector', 'tier=gold', '--config', configFile]);
    started.push(p);
    const exit = await p.exited;
    assert.equal(exit.code, 1, p.output());
    const lines = p.stderr().trim().split('\n');
    assert.equal(lines.length, 1, p.stderr());
    assert.match(
      lines[0] ?? '',
      new RegExp(
        `^conveyor enqueue: GET http://127\\.0\\.0\\.1:${apiPort}/apis/example\\.com/v1/namespaces/default/widgets.*: cannot reach the API server: .*ECONNREFUSED`,
      ),
    );
  });

  it('conveyor watch logs one line per retry naming the API server and the cause, reports not-ready, and exits 0 on SIGTERM', async () => {
    const p = spawnConveyor(['watch', '--config', configFile]);
    started.push(p);
    const url = (await p.waitForOutput(/"url":"(http:\/\/[^"]+)"/))[1];
    const line = (await p.waitForOutput(/^.*"list\/watch failed; retrying".*$/m))[0];
    const logged = JSON.parse(line) as Record<string, unknown>;
    assert.match(String(logged.err), new RegExp(`^GET http://127\\.0\\.0\\.1:${apiPort}/.*: cannot reach the API server: .*ECONNREFUSED`));
    assert.equal(logged.code, 'UNAVAILABLE');
    assert.equal(typeof logged.retryInMs, 'number');
    assert.doesNotMatch(p.output(), /"stack"/, 'an unreachable API server is no bug: no stack traces');
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const exit = await p.stop('SIGTERM');
    assert.equal(exit.code, 0, p.output());
    assert.ok(exit.afterMs < 5_000 + SLACK_MS, `exited ${exit.afterMs} ms after SIGTERM`);
    assert.deepEqual(nonJsonLines(p.output()), []);
  });

  it('a worker’s failed reconcile names the API server and the cause', async () => {
    const p = spawnConveyor(['worker', '--config', configFile]);
    started.push(p);
    await p.waitForOutput(/"worker started"/);
    const queue = new ReconcileQueue({
      controller: 'widgets',
      redis: { url: redis.url, prefix: 'away' },
      queue: configSchema.parse({}).queue,
    });
    try {
      await queue.enqueue({
        key: { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'default', name: 'w-1' },
        reason: 'manual',
      });
    } finally {
      await queue.close();
    }
    const line = await p.waitForOutput(/.*"reconcile failed".*/);
    assert.match(line[0], new RegExp(`http://127\\.0\\.0\\.1:${apiPort}.*cannot reach the API server: .*ECONNREFUSED`));
    assert.doesNotMatch(p.output(), /"fetch failed"/);
    const exit = await p.stop('SIGTERM');
    assert.equal(exit.code, 0);
  });
});
