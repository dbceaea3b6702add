// `conveyor enqueue` and `conveyor status` as a user runs them, against the simulator and a private Redis.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startQueueWorker, TerminalError } from '@conveyor/shared';
import type { Widget } from '../../examples/widgets/controller.ts';
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

describe('CLI: enqueue and status', () => {
  let world: WidgetWorld;
  let configFile: string;
  const common = () => ['--config', configFile, '--controller', CONTROLLER_MODULE];

  before(async () => {
    world = await startWidgetWorld();
    configFile = world.writeConfigFile(mkdtempSync(join(tmpdir(), 'conveyor-cli-')));
  });
  after(async () => {
    await world?.close();
  });

  it('enqueues one object by namespace/name', async () => {
    const result = await conveyor(['enqueue', 'widgets.example.com', 'default/w-1', ...common()]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /enqueued example.com\/v1\/widgets\/default\/w-1/);
    const depth = await world.queue.getDepth();
    assert.equal(depth.waiting + depth.prioritized, 1);
  });

  it('enqueues every object a label selector matches, in one namespace or all', async () => {
    await world.client.create<Widget>(
      { group: '', version: 'v1', plural: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b' } },
    );
    for (let i = 0; i < 30; i += 1) {
      await world.client.create<Widget>(WIDGETS, {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: `sel-${i}`, namespace: i % 2 === 0 ? 'default' : 'team-b', labels: { tier: i % 3 === 0 ? 'gold' : 'silver' } },
      });
    }
    const before = await world.queue.getDepth();
    const one = await conveyor(['enqueue', 'widgets', '--selector', 'tier=gold', '--namespace', 'default', ...common()]);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /enqueued 5 widgets matching "tier=gold" in namespace default/);
    const all = await conveyor(['enqueue', 'widgets', '-l', 'tier=gold', '-A', '--priority', 'low', ...common()]);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /enqueued 10 widgets matching "tier=gold" in all namespaces/);
    const after = await world.queue.getDepth();
    // The 5 in default merged with the first batch: 10 distinct keys wait.
    assert.equal(after.waiting + after.prioritized - (before.waiting + before.prioritized), 10);
  });

  it('with --annotate writes reconcile.fluxcd.io/requestedAt on the object, as flux reconcile does, and enqueues nothing itself', async () => {
    await world.client.create<Widget>(WIDGETS, {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'flux-1', namespace: 'default', annotations: { note: 'kept' } },
    });
    const before = await world.queue.getDepth();
    const result = await conveyor(['enqueue', 'widgets', 'default/flux-1', '--annotate', ...common()]);
    assert.equal(result.status, 0, result.stderr);
    const annotations = (await world.client.get({ ...WIDGETS, namespace: 'default', name: 'flux-1' })).metadata.annotations ?? {};
    const requestedAt = annotations['reconcile.fluxcd.io/requestedAt'] ?? '';
    assert.ok(!Number.isNaN(Date.parse(requestedAt)), `the annotation holds the time: ${requestedAt}`);
    assert.equal(annotations.note, 'kept');
    assert.match(result.stdout, /annotated example.com\/v1\/widgets\/default\/flux-1 with reconcile.fluxcd.io\/requestedAt=/);
    assert.deepEqual(await world.queue.getDepth(), before, 'the watcher enqueues the change, not the CLI');
  });

  const bad: [string, string[], RegExp][] = [
    ['a malformed name', ['enqueue', 'widgets', 'default/a/b'], /is not an object name: name "a\/b" may not contain/],
    ['a malformed namespace', ['enqueue', 'widgets', 'Team_B/w-1'], /is not an object name: namespace "Team_B"/],
    [
      'an uppercase name',
      ['enqueue', 'widgets', 'default/Widget-1'],
      /name "Widget-1" is not a valid widgets\.example\.com name: it must be a DNS-1123 subdomain/,
    ],
    ['a "?" in the name', ['enqueue', 'widgets', 'default/w?x=1'], /name "w\?x=1" is not a valid widgets\.example\.com name/],
    ['a "#" in the name', ['enqueue', 'widgets', 'default/w#1'], /name "w#1" is not a valid widgets\.example\.com name/],
    ['a ":" in the name', ['enqueue', 'widgets', 'default/w:1'], /name "w:1" is not a valid widgets\.example\.com name/],
    [
      'a control character in the name',
      ['enqueue', 'widgets', 'default/w\u001b1'],
      /name "w\\u\{1b\}1" holds a control or formatting character/,
    ],
    [
      'a right-to-left override in the name',
      ['enqueue', 'widgets', 'default/w\u202E1'],
      /name "w\\u\{202e\}1" holds a control or formatting character/,
    ],
    ['an unknown resource', ['enqueue', 'gadgets', 'default/g-1'], /unknown resource "gadgets"/],
    ['a bad priority', ['enqueue', 'widgets', 'default/w-1', '--priority', 'urgent'], /--priority must be high, normal or low/],
    ['no target', ['enqueue', 'widgets'], /missing <namespace>\/<name> or --selector/],
    ['--priority with --annotate', ['enqueue', 'widgets', 'default/w-1', '--annotate', '--priority', 'high'], /--priority does not apply/],
  ];
  for (const [what, args, message] of bad) {
    it(`exits 2 with the reason for ${what}, enqueueing nothing`, async () => {
      const before = await world.queue.getDepth();
      const result = await conveyor([...args, ...common()]);
      assert.equal(result.status, 2);
      assert.match(result.stderr.split('\n')[0] ?? '', message);
      assert.deepEqual(await world.queue.getDepth(), before);
    });
  }

  it('shows depth, workers and parked requests with their reasons, each parked object once', async () => {
    let w1Runs = 0;
    const worker = startQueueWorker({
      controller: 'widgets',
      redis: world.config.redis,
      queue: world.config.queue,
      concurrency: 4,
      processor: async (request) => {
        if (request.key.name !== 'w-1') return { kind: 'done' };
        // A request for w-1 that arrives while it runs becomes a second job, which fails and is parked too.
        if (++w1Runs === 1) await world.queue.enqueue({ key: request.key, reason: 'manual' });
        throw new TerminalError('spec.size must be positive');
      },
    });
    try {
      await waitFor('the queue drained', async () => {
        const d = await world.queue.getDepth();
        return d.waiting + d.prioritized + d.active === 0 && d.parked === 2;
      });
      const result = await conveyor(['status', '--json', ...common()]);
      assert.equal(result.status, 0, result.stderr);
      const report = JSON.parse(result.stdout) as {
        backlog: number;
        workers: { connected: number };
        parked: { key: string; error: string }[];
      };
      assert.equal(report.backlog, 0);
      assert.equal(report.workers.connected, 1);
      assert.deepEqual(
        report.parked.map((p) => p.key),
        ['example.com/v1/widgets/default/w-1'],
      );
      assert.match(report.parked[0]?.error ?? '', /spec.size must be positive/);
      const text = await conveyor(['status', ...common()]);
      assert.match(text.stdout, /parked +2/);
      assert.equal(text.stdout.match(/example.com\/v1\/widgets\/default\/w-1 +attempts \d+ +.*spec.size must be positive/g)?.length, 1);
    } finally {
      await worker.close(1_000);
    }
  });
});
