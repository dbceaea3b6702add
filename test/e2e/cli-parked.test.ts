// `conveyor parked list|retry|discard` (and `status`, `enqueue` on a partitioned queue) as an operator runs them: against a private Redis where a worker parked some Widgets.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type QueueWorker, startQueueWorker, TerminalError } from '@conveyor/shared';
import { CONTROLLER_MODULE, startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

const bin = fileURLToPath(new URL('../../bin/conveyor.mjs', import.meta.url));

function conveyor(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface ListedRequest {
  key: string;
  reason: string;
  attempts: number;
  firstFailure: string;
  lastFailure: string;
  error: string;
}

describe('CLI: conveyor parked', () => {
  let world: WidgetWorld;
  let configFile: string;
  let worker: QueueWorker;
  /** Names whose reconcile fails terminally; the others succeed. */
  const broken = new Set(['w-1', 'w-2', 'w-3']);
  const runs: string[] = [];
  const common = () => ['--config', configFile, '--controller', CONTROLLER_MODULE];
  const parked = async () => (await world.queue.listParked()).map((p) => p.key.name).sort();

  before(async () => {
    world = await startWidgetWorld();
    configFile = world.writeConfigFile(mkdtempSync(join(tmpdir(), 'conveyor-parked-')));
    worker = startQueueWorker({
      controller: 'widgets',
      redis: world.config.redis,
      queue: world.config.queue,
      concurrency: 4,
      processor: async (request) => {
        runs.push(request.key.name);
        if (broken.has(request.key.name)) throw new TerminalError(`spec of ${request.key.name} is invalid`);
        return { kind: 'done' };
      },
    });
    await world.enqueue(['w-1', 'w-2', 'w-3'].map((name) => ({ ...WIDGETS, namespace: 'default', name })));
    await waitFor('three parked', async () => (await world.queue.getDepth()).parked === 3);
  });
  after(async () => {
    await worker?.close(1_000);
    await world?.close();
  });

  it('lists each parked request with its reason, attempts, first and last failure and error', async () => {
    const json = await conveyor(['parked', 'list', '--json', ...common()]);
    assert.equal(json.status, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as ListedRequest[];
    assert.deepEqual(
      listed.map((p) => p.key).sort(),
      ['w-1', 'w-2', 'w-3'].map((n) => `example.com/v1/widgets/default/${n}`),
    );
    for (const p of listed) {
      assert.equal(p.reason, 'terminal');
      assert.equal(p.attempts, 1);
      assert.ok(Date.parse(p.firstFailure) <= Date.parse(p.lastFailure));
      assert.match(p.error, /^TERMINAL: spec of w-\d is invalid$/);
    }
    const text = await conveyor(['parked', 'list', ...common()]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^KEY +REASON +ATTEMPTS +FIRST FAILURE +LAST FAILURE +ERROR$/m);
    assert.match(text.stdout, /^example\.com\/v1\/widgets\/default\/w-1 +terminal +1 +\S+ +\S+ +TERMINAL: spec of w-1 is invalid$/m);
  });

  it('retry <key> runs that request again (and only it), which leaves the parked list once it succeeds', async () => {
    broken.delete('w-1');
    const before = runs.length;
    const result = await conveyor(['parked', 'retry', 'default/w-1', ...common()]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /re-enqueued 1 parked request \(example.com\/v1\/widgets\/default\/w-1\) with fresh attempts/);
    await waitFor('w-1 reconciled again', () => runs.slice(before).includes('w-1'));
    assert.deepEqual(runs.slice(before), ['w-1']);
    assert.deepEqual(await parked(), ['w-2', 'w-3']);
  });

  it('discard <key> removes the request and its parked entry without running it', async () => {
    const before = runs.length;
    const result = await conveyor(['parked', 'discard', 'example.com/v1/widgets/default/w-2', ...common()]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /discarded 1 parked request \(example.com\/v1\/widgets\/default\/w-2\)/);
    assert.deepEqual(await parked(), ['w-3']);
    const depth = await world.queue.getDepth();
    assert.equal(depth.waiting + depth.prioritized + depth.active + depth.delayedDue + depth.delayedLater, 0, 'nothing queued for it');
    assert.equal(runs.length, before, 'nothing ran');
  });

  it('retry --all runs every parked request again; discard --all then finds nothing', async () => {
    broken.clear();
    const before = runs.length;
    const retried = await conveyor(['parked', 'retry', '--all', ...common()]);
    assert.equal(retried.status, 0, retried.stderr);
    await waitFor('w-3 reconciled again', () => runs.slice(before).includes('w-3'));
    await waitFor('nothing parked', async () => (await parked()).length === 0);
    const discarded = await conveyor(['parked', 'discard', '--all', ...common()]);
    assert.equal(discarded.status, 1);
    assert.match(discarded.stderr, /nothing parked/);
  });

  const bad: [string, string[], RegExp][] = [
    ['no action', ['parked'], /missing list, retry or discard/],
    ['an unknown action', ['parked', 'drop', '--all'], /unknown action "drop"/],
    ['retry without a key', ['parked', 'retry'], /retry needs a <key> or --all/],
    ['a key of another resource', ['parked', 'retry', 'v1/configmaps/default/x'], /not a key of this controller's resource/],
  ];
  for (const [what, args, message] of bad) {
    it(`exits 2 with the reason for ${what}`, async () => {
      const result = await conveyor([...args, ...common()]);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr.split('\n')[0] ?? '', message);
    });
  }
});

describe('CLI: conveyor status and parked with the queue in 3 partitions', () => {
  let world: WidgetWorld;
  let worker: QueueWorker;
  let dir: string;
  const broken = new Set(['w-1', 'w-2', 'w-3']);
  const runs: string[] = [];
  const common = (partitions = 3) => ['--config', world.writeConfigFile(dir, { queue: { partitions } }), '--controller', CONTROLLER_MODULE];

  before(async () => {
    world = await startWidgetWorld({ queue: { partitions: 3 } });
    dir = mkdtempSync(join(tmpdir(), 'conveyor-partitions-'));
    worker = startQueueWorker({
      controller: 'widgets',
      redis: world.config.redis,
      queue: world.config.queue,
      concurrency: 3,
      processor: async (request) => {
        runs.push(request.key.name);
        if (broken.has(request.key.name)) throw new TerminalError(`spec of ${request.key.name} is invalid`);
        return request.key.name === 'later' ? { kind: 'requeueAfter', delayMs: 3_600_000 } : { kind: 'done' };
      },
    });
    // w-1, w-2 and w-3 hash to partitions 0, 1 and 2.
    await world.enqueue(['w-1', 'w-2', 'w-3'].map((name) => ({ ...WIDGETS, namespace: 'default', name })));
    await waitFor('three parked', async () => (await world.queue.getDepth()).parked === 3);
  });
  after(async () => {
    await worker?.close(1_000);
    await world?.close();
  });

  it('status counts every partition, parked list shows all three, retry --all runs them again', async () => {
    const status = await conveyor(['status', '--json', ...common()]);
    assert.equal(status.status, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { partitions: number; depth: { parked: number }; parked: { key: string }[] };
    assert.equal(report.partitions, 3);
    assert.equal(report.depth.parked, 3);
    assert.deepEqual(
      report.parked.map((p) => p.key).sort(),
      ['w-1', 'w-2', 'w-3'].map((n) => `example.com/v1/widgets/default/${n}`),
    );
    broken.clear();
    const before = runs.length;
    const retried = await conveyor(['parked', 'retry', '--all', ...common()]);
    assert.equal(retried.status, 0, retried.stderr);
    await waitFor('all three reconciled again', () => ['w-1', 'w-2', 'w-3'].every((n) => runs.slice(before).includes(n)));
    await waitFor('nothing parked', async () => (await world.queue.getDepth()).parked === 0);
    const enqueued = await conveyor(['enqueue', 'widgets', 'default/w-5', ...common()]);
    assert.equal(enqueued.status, 0, enqueued.stderr);
    await waitFor('w-5 reconciled', () => runs.includes('w-5'));
  });

  it('refuses a configuration with another partition count while the queue holds requests, naming both', async () => {
    // A request waiting an hour for its requeue: the queue is not empty, so the count cannot change.
    await world.enqueue([{ ...WIDGETS, namespace: 'default', name: 'later' }]);
    await waitFor('the requeue waiting', async () => (await world.queue.getDepth()).delayedLater === 1);
    const result = await conveyor(['status', ...common(1)]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /queue\.partitions: is 1, but the queue in Redis is split into 3 partitions and still holds 1 request/);
  });
});
