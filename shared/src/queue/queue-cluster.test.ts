// The queue protocol on a real 3-node Redis Cluster (redis-server --cluster-enabled yes, redis-cli --cluster create), unpartitioned and in 3 partitions.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { queueLeftovers } from '@conveyor/test/race/recorder';
import { gate, queueHarness, waitFor, widgetKey } from '@conveyor/test/support/queue-fixtures';
import { RedisCluster } from '@conveyor/test/support/redis-cluster';
import { Cluster, Redis } from 'ioredis';
import { configSchema } from '../config.ts';
import { TerminalError } from '../errors.ts';
import { keyToJobId } from '../object-key.ts';
import { done, requeueAfter } from '../outcome.ts';
import { BULLMQ_KEY, bullmqKey } from './bullmq-internals.ts';
import type { QueueSettings } from './reconcile-queue.ts';
import { controllerKeys, type QueueLocation, queueLocation } from './redis-keys.ts';

let cluster: RedisCluster;
let client: Cluster;

before(async () => {
  cluster = await RedisCluster.start(3);
  client = new Cluster(
    cluster.clusterNodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })),
    { redisOptions: { maxRetriesPerRequest: null } },
  );
  await client.ping();
});
after(async () => {
  client?.disconnect();
  await cluster?.close();
});

function settingsFor(controller: string, partitions = 1): QueueSettings {
  const config = configSchema.parse({
    // `url` points at a cluster node too: code that wrongly used it instead of the Cluster client would hit MOVED errors.
    redis: { url: cluster.nodes[0]?.url, clusterNodes: cluster.clusterNodes },
    queue: { lockDuration: '2s', stalledInterval: '1s', attempts: 3, backoff: { base: '20ms', max: '200ms', jitter: 0 }, partitions },
  });
  return { controller, redis: config.redis, queue: config.queue };
}

/** The node (port) that serves the slot of a queue's hash tag (an unpartitioned controller's, by name). */
async function nodeOf(queue: string | QueueLocation): Promise<number> {
  const location = typeof queue === 'string' ? queueLocation('conveyor', queue) : queue;
  const slot = Number(await client.cluster('KEYSLOT', bullmqKey(location, BULLMQ_KEY.wait)));
  const ranges = await client.cluster('SLOTS');
  const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (owner === undefined) throw new Error(`no node serves slot ${slot}`);
  const port = owner[2]?.[1];
  if (port === undefined) throw new Error(`slot ${slot} has no master`);
  return port;
}

/** Jobs and dedup keys a queue left, of every partition, read from every node (each holds its own slots). */
async function leftovers(controller: string, partitions = 1): Promise<string[]> {
  const found = await Promise.all(
    cluster.nodes.map(async ({ url }) => {
      const node = new Redis(url);
      try {
        return await queueLeftovers(node, 'conveyor', controller, partitions);
      } finally {
        node.disconnect();
      }
    }),
  );
  return found.flat().sort();
}

/** A controller name whose partitions' hash tags land on `nodes` different masters. */
async function spreadName(base: string, partitions: number, nodes: number): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const name = `${base}-${i}`;
    const ports = await Promise.all(controllerKeys('conveyor', name, partitions).partitions.map((p) => nodeOf(p.queue)));
    if (new Set(ports).size === nodes) return name;
  }
  throw new Error(`no name puts ${partitions} partitions on ${nodes} nodes`);
}

describe('the reconcile queue on a 3-node Redis Cluster', () => {
  for (const partitions of [1, 3]) {
    it(`enqueues, merges, keeps a request made during a run, requeues, parks and retries, with nothing left behind (${partitions} partition${partitions === 1 ? '' : 's, one per node'})`, async () => {
      const settings =
        partitions === 1 ? settingsFor('cluster-main') : settingsFor(await spreadName('cluster-parts', partitions, 3), partitions);
      const hold = gate();
      let failP = true;
      const h = queueHarness(settings, async (request, runs) => {
        const mine = runs.filter((r) => r.key.name === request.key.name).length;
        if (request.key.name === 'a' && mine === 1) await hold.promise;
        if (request.key.name === 'r' && mine === 1) return requeueAfter('1h');
        if (request.key.name === 'p' && failP) throw new TerminalError('bad spec');
        return done;
      });
      try {
        assert.equal(await h.queue.checkEpoch(), false);
        for (let i = 0; i < 5; i++) await h.queue.enqueue({ key: widgetKey('b'), reason: 'event' });
        await h.queue.enqueueBatch([
          { key: widgetKey('b'), reason: 'resync' },
          { key: widgetKey('c'), reason: 'resync' },
        ]);
        const partitionOf = (name: string) =>
          controllerKeys('conveyor', settings.controller, partitions).partitionOf(keyToJobId(widgetKey(name))).index;
        assert.equal(new Set(['a', 'b', 'c', 'p', 'r'].map(partitionOf)).size, partitions, 'the keys of this test fill every partition');
        // b's resync merged into its waiting event; c's waits in the resync backlog until a worker admits it.
        assert.deepEqual(await h.queue.getDepth(), {
          waiting: 0,
          prioritized: 2,
          delayedDue: 0,
          delayedLater: 0,
          active: 0,
          parked: 0,
          lanes: { event: 1, manual: 0, resync: 1 },
          resyncBacklog: 1,
        });

        h.start();
        await waitFor('the worker is seen on the cluster', async () => (await h.queue.getWorkerCount()) === 1);
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await waitFor('a running', () => h.names().includes('a'));
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'event' });
        await h.queue.enqueue({ key: widgetKey('a'), reason: 'manual' });
        hold.open();
        await waitFor('a ran again after the held run', () => h.names().filter((n) => n === 'a').length === 2);

        await h.queue.enqueue({ key: widgetKey('r'), reason: 'event' });
        await waitFor('r requeued for an hour', async () => (await h.queue.getDepth()).delayedLater === 1);
        await h.queue.enqueue({ key: widgetKey('r'), reason: 'event' });
        await waitFor('r pulled forward', () => h.names().filter((n) => n === 'r').length === 2);

        await h.queue.enqueue({ key: widgetKey('p'), reason: 'event' });
        await waitFor('p parked', async () => (await h.queue.getDepth()).parked === 1);
        assert.deepEqual(
          (await h.queue.listParked()).map((p) => [p.key.name, p.error]),
          [['p', 'TERMINAL: bad spec']],
        );
        failP = false;
        assert.equal(await h.queue.retryParked(widgetKey('p')), 1);
        await waitFor('p reconciled again', () => h.names().filter((n) => n === 'p').length === 2);

        await waitFor('queue drained and clean', async () => (await leftovers(settings.controller, partitions)).length === 0);
        assert.deepEqual(
          h
            .names()
            .filter((n) => n === 'b' || n === 'c')
            .sort(),
          ['b', 'c'],
          'six requests for b merged into one run',
        );
        assert.equal(h.runs.find((r) => r.key.name === 'a' && r.reason === 'manual') !== undefined, true, 'the latest request wins');
        assert.equal(await h.queue.checkEpoch(), false);
        // Losing the node that holds the queue's slot (here: its data) is noticed like on a single server; with
        // partitions, losing the node of any one of them is.
        const lostPartition = controllerKeys('conveyor', settings.controller, partitions).partitions.at(-1);
        const owner = new Redis(`redis://127.0.0.1:${await nodeOf(lostPartition?.queue ?? settings.controller)}`);
        try {
          await owner.flushall();
        } finally {
          owner.disconnect();
        }
        assert.equal(await h.queue.checkEpoch(), true);
      } finally {
        await h.close();
      }
    });
  }

  it("keeps every key Conveyor writes for a controller in its queue's slot, and each partition's in the partition's", async () => {
    const slotOf = async (key: string) => Number(await client.cluster('KEYSLOT', key));
    for (const partitions of [1, 3]) {
      const keys = controllerKeys('conveyor', 'cluster-keys', partitions);
      const controllerSlot = await slotOf(bullmqKey(queueLocation('conveyor', 'cluster-keys'), BULLMQ_KEY.wait));
      for (const key of [keys.layout, keys.watchCursor, keys.desiredWorkers, keys.blocked, keys.statsBucket(1)]) {
        assert.equal(await slotOf(key), controllerSlot, key);
      }
      for (const partition of keys.partitions) {
        const queueSlot = await slotOf(bullmqKey(partition.queue, BULLMQ_KEY.wait));
        for (const key of [partition.epoch, partition.parkedKeys]) assert.equal(await slotOf(key), queueSlot, key);
      }
    }
  });

  it('runs queues whose hash tags live on different nodes side by side', async () => {
    // Controller names whose queues land on three different masters.
    const byNode = new Map<number, string>();
    for (let i = 0; byNode.size < 3 && i < 200; i++) {
      const name = `spread-${i}`;
      const node = await nodeOf(name);
      if (!byNode.has(node)) byNode.set(node, name);
    }
    assert.equal(byNode.size, 3, 'found a queue name for every node');
    const harnesses = [...byNode.values()].map((controller) => ({
      controller,
      h: queueHarness(settingsFor(controller), async () => done),
    }));
    try {
      for (const { h } of harnesses) {
        h.start();
        await h.queue.enqueueBatch(Array.from({ length: 200 }, (_, i) => ({ key: widgetKey(`k${i % 100}`), reason: 'event' as const })));
      }
      for (const { controller, h } of harnesses) {
        await waitFor(`${controller} drained`, async () => (await leftovers(controller)).length === 0);
        assert.ok(h.runs.length >= 100 && h.runs.length <= 200, `${controller}: ${h.runs.length} runs for 100 keys`);
        assert.equal(new Set(h.names()).size, 100);
      }
    } finally {
      await Promise.all(harnesses.map(({ h }) => h.close()));
    }
  });
});
