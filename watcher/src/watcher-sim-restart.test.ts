import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ChildWatcherSettings } from '@conveyor/test/support/watcher-child';
import { startWatcherWorld, type WatcherWorld, WIDGETS_PATH, waitFor, widgetKey } from '@conveyor/test/support/watcher-world';

// Issue 5 acceptance: SIGKILL the watcher while objects change, start it again with the same cursor in
// Redis: every object changed during the downtime is enqueued after the restart — and, thanks to the
// cursor, not every object.
const OBJECTS = 2_000;
const FINALIZED = 50;
const CONTROLLER = 'restarted';
const CHILD = new URL('../../test/support/watcher-child.ts', import.meta.url).pathname;

describe('Watcher on the simulator: SIGKILL and restart from the cursor in Redis', () => {
  let world: WatcherWorld;
  let child: ChildProcess | undefined;

  before(async () => {
    world = await startWatcherWorld();
    await world.createWidgets(OBJECTS);
    await world.createWidgets(FINALIZED, { from: OBJECTS, finalizers: ['example.com/keep'] });
  });
  after(async () => {
    child?.kill('SIGKILL');
    await world?.close();
  });

  it('enqueues every Widget changed, created or deleted-with-finalizer while it was down, and not the unchanged ones', async () => {
    const settings: ChildWatcherSettings = {
      server: world.sim.url,
      token: world.sim.token,
      redisUrl: world.redis.url,
      prefix: world.prefix,
      controller: CONTROLLER,
      cursorIntervalMs: 100,
    };
    const proc = spawn(process.execPath, [CHILD, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = proc;
    let out = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await waitFor('the child watcher synced', () => out.includes('ready'), 120_000);
    const cursorKey = (world.cursorStore(CONTROLLER) as unknown as { key: string }).key;
    await waitFor('a cursor saved in Redis', async () => Object.keys(await world.connection.hgetall(cursorKey)).length > 0);

    // Objects keep changing while the watcher is killed.
    const changedAround: string[] = [];
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        const name = `w-${i}`;
        changedAround.push(name);
        await world.patchWidget(name, { spec: { size: -1 } });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
    child = undefined;
    await new Promise((resolve) => setTimeout(resolve, 500));
    churning = false;
    await churn;

    // While it is down: spec changes, new Widgets, deletions of Widgets that carry a finalizer.
    const downtime: string[] = [];
    for (let i = 1_000; i < 1_100; i++) {
      await world.patchWidget(`w-${i}`, { spec: { size: -2 } });
      downtime.push(`w-${i}`);
    }
    await world.createWidgets(30, { from: 5_000 });
    for (let i = 5_000; i < 5_030; i++) downtime.push(`w-${i}`);
    for (let i = OBJECTS; i < OBJECTS + 20; i++) {
      await world.request('DELETE', `${WIDGETS_PATH}/w-${i}`);
      downtime.push(`w-${i}`);
    }

    const queue = world.newQueue(CONTROLLER);
    const restarted = await world.startWatcher({ queue, cursor: world.cursorStore(CONTROLLER) });
    await waitFor('every Widget changed during the downtime enqueued', () => {
      const seen = new Set(queue.keys);
      return downtime.every((name) => seen.has(widgetKey(name)));
    });
    assert.equal(
      restarted.watcher.tracked,
      OBJECTS + FINALIZED + 30,
      'the Widgets deleted with a finalizer are still there, being deleted',
    );
    const allowed = new Set([...downtime, ...changedAround].map((name) => widgetKey(name)));
    const extra = [...new Set(queue.keys)].filter((key) => !allowed.has(key));
    assert.deepEqual(extra, [], 'Widgets unchanged since the saved cursor are not enqueued again');
    assert.ok(queue.keys.length < OBJECTS / 2, `${queue.keys.length} requests after the restart, not a full re-enqueue`);
  });
});
