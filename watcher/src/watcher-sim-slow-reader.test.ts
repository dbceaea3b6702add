// A loaded watcher against a server that closes slow readers, as kube-apiserver does: it reads its streaming list as fast as the server writes, and lists in pages only when the stream really breaks.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { BusyWatcherSettings } from '@conveyor/test/support/busy-watcher-child';
import { startWatcherWorld, type WatcherWorld, waitFor } from '@conveyor/test/support/watcher-world';

const CHILD = new URL('../../test/support/busy-watcher-child.ts', import.meta.url).pathname;
const OBJECTS = 10_000;
const LAST_APPLIED = { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ spec: { notes: 'x'.repeat(500) } }) };
/** Widgets created per 10 ms while a watcher lists: 100 live events a second, which the server must hand to its watch. */
const CREATED_PER_TICK = 1;
/**
 * The same load in both cases: the watcher's event loop blocked 15 ms of every 20, and 100 µs of CPU
 * per list item (10,000 items: a second of CPU, four seconds at a quarter of the loop). Handled in
 * the same turn as it is read, the streaming list would take the server that long to write, and
 * far more than 100 live events would wait meanwhile.
 */
const LOAD = { busyMs: 15, everyMs: 20, perEventMicros: 100 };

describe('Watcher on the simulator: a server that closes watches whose client does not keep up', () => {
  let world: WatcherWorld;
  /** Widgets created so far, `w-0` … `w-<widgets - 1>`. */
  let widgets = OBJECTS;
  const children: ChildProcess[] = [];

  before(async () => {
    // kube-apiserver's rule: a watch that leaves more than 100 live events waiting for 100 ms is closed.
    world = await startWatcherWorld({ unresponsiveWatches: true });
    // As kubectl apply leaves them: the last applied configuration in an annotation, half a kilobyte here. A list then
    // outgrows what the kernel's socket buffers hold (megabytes on loopback), so a client that does not read
    // leaves the server's writes waiting, as it would across a network.
    await world.createWidgets(OBJECTS, { labels: { 'app.kubernetes.io/name': 'widget', tier: 'gold' }, annotations: LAST_APPLIED });
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await world?.close();
  });

  /** Runs a busy watcher in its own process while Widgets are created; resolves once it tracks every Widget. */
  async function syncUnderLoad(settings: Partial<BusyWatcherSettings>): Promise<void> {
    const full: BusyWatcherSettings = { server: world.sim.url, token: world.sim.token, ...LOAD, ...settings };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(full)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let synced: number | undefined;
    let tracked = 0;
    let pending = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const report = JSON.parse(line) as { synced?: boolean; tracked: number };
        if (report.synced === true) synced = report.tracked;
        tracked = report.tracked;
      }
    });
    const before = widgets;
    // Live events from the moment the watcher starts until its first list is in.
    const writer = setInterval(() => {
      void world.createWidgets(CREATED_PER_TICK, { from: widgets });
      widgets += CREATED_PER_TICK;
    }, 10);
    try {
      await waitFor('the busy watcher synced', () => synced !== undefined, 120_000);
    } finally {
      clearInterval(writer);
    }
    // Nothing lost: the watcher ends up holding every Widget, those created during its list included.
    await waitFor('the watcher holds every Widget', () => tracked === widgets, 60_000);
    child.kill('SIGKILL');
    assert.ok(widgets > before, 'Widgets were created while the watcher listed');
  }

  it('keeps up: its streaming list is read while events are handled, so the server closes nothing and no page is listed', async () => {
    const seq = world.lastSeq();
    const closesBefore = world.sim.unresponsiveWatchCloses();
    await syncUnderLoad({});
    assert.equal(world.sim.unresponsiveWatchCloses() - closesBefore, 0, 'no watch closed for unresponsiveness');
    const reads = world.readsSince(seq);
    assert.deepEqual(
      reads.filter((r) => r.verb === 'list').map((r) => r.limit),
      [],
      'no paged list',
    );
    assert.equal(reads.filter((r) => r.verb === 'watch' && r.sendInitialEvents === true).length, 1, 'one streaming list');
  });

  it('falls back to pages when the stream really breaks: a line buffer too small for the load fills, reading stops and the server closes the watch', async () => {
    world.sim.resetRequests();
    const closesBefore = world.sim.unresponsiveWatchCloses();
    // 32 KiB: about 40 Widgets. Handling then sets the pace of reading, as if nothing were buffered.
    await syncUnderLoad({ watchBufferBytes: 32 * 1024 });
    assert.ok(world.sim.unresponsiveWatchCloses() - closesBefore >= 1, 'the server closed the slow reader');
    const reads = world.readsSince(0);
    const streamed = reads.findIndex((r) => r.verb === 'watch' && r.sendInitialEvents === true);
    const paged = reads.findIndex((r) => r.verb === 'list' && r.limit !== undefined);
    assert.ok(
      streamed !== -1 && paged > streamed,
      `a streaming list first, then pages: ${JSON.stringify(reads.map((r) => [r.verb, r.limit, r.sendInitialEvents, r.resourceVersion, r.code]))}`,
    );
  });
});
