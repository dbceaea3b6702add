import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ACCEPT_METADATA, ACCEPT_METADATA_LIST, createLogger, type KubeObject } from '@conveyor/shared';
import { FakeApi } from '@conveyor/test/fakes/fake-kube-transport';
import { waitFor } from '@conveyor/test/support/wait-for';
import { ListWatch, type ListWatchHandler, type ListWatchOptions } from './list-watch.ts';

const logger = createLogger({ level: 'silent' });
const widgets = { group: 'example.com', version: 'v1', plural: 'widgets' };

/** Records what the state machine tells its handler, as a user of it would observe. */
class Recorder implements ListWatchHandler {
  lists: { reason: string; items: string[]; rv?: string }[] = [];
  events: string[] = [];
  malformedLines = 0;
  restarts: string[] = [];
  beginList(reason: string) {
    this.lists.push({ reason, items: [] });
  }
  listItem(o: KubeObject) {
    this.lists.at(-1)?.items.push(`${o.metadata?.name}@${o.metadata?.resourceVersion}`);
  }
  endList(rv: string) {
    const last = this.lists.at(-1);
    if (last) last.rv = rv;
  }
  event(type: string, o: KubeObject) {
    this.events.push(`${type} ${o.metadata?.name}@${o.metadata?.resourceVersion}`);
  }
  bookmark() {}
  malformed() {
    this.malformedLines++;
  }
  restarted(reason: string) {
    this.restarts.push(reason);
  }
}

const stops: AbortController[] = [];
after(() => {
  for (const s of stops) s.abort();
});

function start(api: FakeApi, options: Partial<ListWatchOptions> = {}) {
  const handler = new Recorder();
  const lw = new ListWatch({
    resource: widgets,
    transport: api.transport,
    handler,
    logger,
    pageSize: 3,
    streamingList: 'never',
    baseBackoffMs: 5,
    maxBackoffMs: 20,
    bookmarkIntervalMs: 10_000,
    ...options,
  });
  const stop = new AbortController();
  stops.push(stop);
  const done = lw.run(stop.signal);
  return {
    handler,
    lw,
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

function seed(api: FakeApi, n: number) {
  for (let i = 0; i < n; i++) api.create(`w-${String(i).padStart(3, '0')}`);
}

describe('ListWatch', () => {
  it('lists metadata-only in pages of the configured size, then watches metadata-only with bookmarks from the list resourceVersion', async () => {
    const api = new FakeApi();
    seed(api, 10);
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    assert.equal(handler.lists.length, 1);
    assert.equal(handler.lists[0]?.items.length, 10);
    const lists = api.requests.filter((r) => r.kind === 'list');
    assert.equal(lists.length, 4, 'ten objects in pages of three');
    assert.ok(lists.every((r) => r.accept === ACCEPT_METADATA_LIST && r.query.limit === '3'));
    const watch = api.requests.find((r) => r.kind === 'watch');
    assert.equal(watch?.accept, ACCEPT_METADATA);
    assert.equal(watch?.query.allowWatchBookmarks, 'true');
    assert.equal(watch?.query.resourceVersion, handler.lists[0]?.rv);
    assert.ok(Number(watch?.query.timeoutSeconds) >= 300);
    await stop();
  });

  it('resumes from the last resourceVersion when the server keeps closing the watch: every event once, no relist', async () => {
    const api = new FakeApi();
    seed(api, 5);
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    const expected: string[] = [];
    for (let round = 0; round < 20; round++) {
      api.update(`w-00${round % 5}`, { generation: round + 2 });
      expected.push(`MODIFIED w-00${round % 5}@${api.rv}`);
      if (round % 3 === 0) api.closeWatches();
      // Changes while no watch is open must come back through the resumed watch.
      await new Promise((resolve) => setTimeout(resolve, round % 2));
    }
    await waitFor('every event', () => handler.events.length >= expected.length);
    assert.deepEqual(handler.events, expected);
    assert.equal(handler.lists.length, 1, 'no relist');
    assert.ok(handler.restarts.filter((r) => r === 'closed').length >= 7);
    await stop();
  });

  it('relists once when the resumed watch answers 410 Gone, then watches on', async () => {
    const api = new FakeApi();
    seed(api, 4);
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    api.remove('w-001');
    await waitFor('the deletion', () => handler.events.length === 1);
    // Writes elsewhere move the resourceVersion on and the history forgets: resuming is no longer possible.
    api.rv += 5;
    api.compact();
    api.closeWatches();
    await waitFor('the relist', () => handler.lists.length === 2);
    assert.equal(handler.lists[1]?.reason, 'gone');
    assert.deepEqual(
      handler.lists[1]?.items.map((i) => i.split('@')[0]),
      ['w-000', 'w-002', 'w-003'],
    );
    await waitFor('the watch after relisting', () => api.openWatches === 1);
    api.update('w-002', { generation: 4 });
    await waitFor('the next event', () => handler.events.length === 2);
    assert.equal(handler.lists.length, 2, 'exactly one relist');
    await stop();
  });

  it('restarts the list from the first page when a continue token expires', async () => {
    const api = new FakeApi();
    seed(api, 7);
    api.expireNextContinue = true;
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    assert.deepEqual(
      handler.lists.map((l) => l.reason),
      ['initial', 'expired'],
    );
    assert.equal(handler.lists[1]?.items.length, 7);
    await stop();
  });

  it('keeps trying through server errors and throttling with backoff, and never stops', async () => {
    const api = new FakeApi();
    seed(api, 2);
    api.failures.push(500, 503, 429, 500);
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    assert.equal(handler.lists.at(-1)?.items.length, 2);
    api.failures.push(500, 500);
    api.closeWatches();
    await waitFor('the watch again', () => api.openWatches === 1 && api.failures.length === 0);
    api.update('w-000', { generation: 9 });
    await waitFor('the event after the errors', () => handler.events.length === 1);
    assert.ok(handler.restarts.includes('error'));
    await stop();
  });

  it('reopens a watch that stays silent for twice the bookmark interval', async () => {
    const api = new FakeApi();
    seed(api, 1);
    const { handler, stop } = start(api, { bookmarkIntervalMs: 30 });
    await waitFor('a silent restart', () => handler.restarts.includes('silent'), 3_000);
    await waitFor('the watch again', () => api.openWatches === 1);
    api.update('w-000', { generation: 3 });
    await waitFor('the event', () => handler.events.length === 1);
    assert.equal(handler.lists.length, 1);
    await stop();
  });

  it('counts and skips a malformed line and carries on', async () => {
    const api = new FakeApi();
    seed(api, 1);
    const { handler, stop } = start(api);
    await waitFor('the watch', () => api.openWatches === 1);
    api.sendRaw('{not json');
    api.sendRaw(JSON.stringify({ type: 'MODIFIED' }));
    api.update('w-000', { generation: 2 });
    await waitFor('the event', () => handler.events.length === 1);
    assert.equal(handler.malformedLines, 2);
    await stop();
  });

  it('streams the list where the server supports it, and falls back to pages where it refuses', async () => {
    const api = new FakeApi();
    seed(api, 5);
    const streaming = start(api, { streamingList: 'auto' });
    await waitFor('the streamed list', () => streaming.handler.lists[0]?.rv !== undefined);
    assert.equal(streaming.handler.lists[0]?.items.length, 5);
    assert.equal(api.count('list'), 0, 'no paged list');
    assert.equal(api.requests[0]?.query.sendInitialEvents, 'true');
    api.update('w-001', { generation: 2 });
    await waitFor('an event on the same stream', () => streaming.handler.events.length === 1);
    await streaming.stop();

    const old = new FakeApi();
    seed(old, 5);
    old.failures.push(422);
    const paged = start(old, { streamingList: 'auto' });
    await waitFor('the paged list', () => paged.handler.lists.at(-1)?.rv !== undefined);
    assert.equal(paged.handler.lists.at(-1)?.items.length, 5);
    assert.ok(old.count('list') >= 2);
    await paged.stop();
  });

  it('lists in pages when a streaming list keeps breaking off before its end, instead of retrying the stream forever', async () => {
    const api = new FakeApi();
    seed(api, 5);
    api.cutStreamingListsAfter = 2;
    const lw = start(api, { streamingList: 'auto' });
    await waitFor('a completed list', () => lw.handler.lists.some((l) => l.rv !== undefined));
    const done = lw.handler.lists.find((l) => l.rv !== undefined);
    assert.equal(done?.items.length, 5);
    assert.ok(api.count('list') >= 2, 'the completed list was paged');
    api.update('w-001', { generation: 2 });
    await waitFor('events after the paged list', () => lw.handler.events.length === 1);
    await lw.stop();
  });
});
