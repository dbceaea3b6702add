// The logs of a watcher and a worker at the default level, as a user reads them: one meaning per key, no key twice on a line, and each successful reconcile visible.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger, formatKey, keyOf, startQueueWorker, TerminalError } from '@conveyor/shared';
import { runWatcher, type WatcherHandle } from '@conveyor/watcher/run-watcher';
import { type ContainerWorker, startContainerWorker } from '@conveyor/workers/container-worker';
import widgets, { type Widget } from '../../examples/widgets/controller.ts';
import { startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

/** The top-level keys of one JSON line, in order, repeats included (JSON.parse would keep only the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let end = i + 1;
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth += 1;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth -= 1;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

class Lines {
  readonly all: string[] = [];
  write(chunk: string): void {
    for (const line of chunk.split('\n')) if (line.trim() !== '') this.all.push(line);
  }
  json(): Record<string, unknown>[] {
    return this.all.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

describe('Logs of a watcher and a worker at the default level', () => {
  let world: WidgetWorld;
  let watcher: WatcherHandle | undefined;
  let worker: ContainerWorker | undefined;
  const watcherLines = new Lines();
  const workerLines = new Lines();

  before(async () => {
    world = await startWidgetWorld({ queue: { attempts: 2, backoff: { base: '20ms', max: '50ms' } } });
    const kubeConfig = world.sim.kubeConfig();
    const config = { ...world.config, log: { level: 'info' as const } };
    watcher = await runWatcher({
      controller: widgets,
      config,
      logger: createLogger({ name: 'watcher', destination: watcherLines }),
      kubeConfig,
    });
    await watcher.ready;
    worker = await startContainerWorker({
      controller: widgets,
      config,
      kubeConfig,
      logger: createLogger({ name: 'worker', destination: workerLines }),
      http: false,
    });
  });
  after(async () => {
    await worker?.close(1_000);
    await watcher?.close();
    await world?.close();
  });

  it('shows each successful reconcile in the worker’s log; no line repeats a key; `key` and `resource` mean one thing each', async () => {
    const [key] = await world.createWidgets(1);
    assert.ok(key !== undefined);
    await waitFor('the reconcile logged', () => workerLines.json().some((l) => l.msg === 'reconciled' && l.key === formatKey(key)), 30_000);
    // A watch that expires makes the list+watch loop log (410 Gone), and a request that fails for good makes the queue log.
    world.sim.faults.expireNextWatch(3);
    world.sim.faults.closeWatches();
    await world.client.patch<Widget>(key, { type: 'merge', body: { spec: { size: 7 } } });
    const bad = keyOf(WIDGETS, { metadata: { namespace: 'default', name: 'not-there-yet' } });
    const failing = startQueueWorker({
      controller: 'widgets-failing',
      redis: world.config.redis,
      queue: { ...world.config.queue, attempts: 1 },
      concurrency: 1,
      logger: createLogger({ name: 'worker', destination: workerLines }),
      processor: async () => {
        throw new TerminalError('spec.size must be positive');
      },
    });
    const { ReconcileQueue } = await import('@conveyor/shared');
    const queue = new ReconcileQueue({ controller: 'widgets-failing', redis: world.config.redis, queue: world.config.queue });
    await queue.enqueue({ key: bad, reason: 'event' });
    await waitFor('a failure logged', () => workerLines.json().some((l) => l.msg === 'reconcile failed'), 30_000);
    await waitFor('the relist logged', () => watcherLines.json().some((l) => typeof l.msg === 'string' && l.msg.includes('410')), 30_000);
    await failing.close(1_000);
    await queue.close();

    for (const line of [...watcherLines.all, ...workerLines.all]) {
      const keys = topLevelKeys(line);
      assert.deepEqual(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        [],
        `a key twice on: ${line}`,
      );
    }
    for (const line of [...watcherLines.json(), ...workerLines.json()]) {
      if ('key' in line)
        assert.match(
          String(line.key),
          /^([a-z0-9.-]+\/)?v[0-9a-z]+\/[a-z0-9]+\/[^/]*\/[^/]+$/,
          `key is an object key: ${JSON.stringify(line)}`,
        );
      if ('resource' in line)
        assert.doesNotMatch(String(line.resource), /^\//, `resource names a resource, not a path: ${JSON.stringify(line)}`);
      assert.ok(!JSON.stringify(line).includes(world.sim.token), 'no token in a log line');
    }
    const reconciled = workerLines.json().find((l) => l.msg === 'reconciled');
    assert.deepEqual(reconciled?.outcome, { kind: 'done' });
    assert.equal(reconciled?.level, 30, 'at info, the default level');
  });
});
