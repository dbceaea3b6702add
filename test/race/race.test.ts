// The race test (issue 4): two worker processes, bursty events, transient errors and requeue-afters, a SIGKILL — nothing lost, no overlap.
//
// CI size: 100 keys / 5,000 events, on one queue and on one split into 3 partitions. `npm run test:race-large` runs 200 keys / 20,000 events
// (CONVEYOR_RACE_SIZE=large); CONVEYOR_RACE_SEED=<n> replays a run whose seed a failure printed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { describeReport } from './detector.ts';
import { runRace } from './run-race.ts';

const large = process.env.CONVEYOR_RACE_SIZE === 'large';
const size = large ? { keys: 200, events: 20_000 } : { keys: 100, events: 5_000 };
const seed = process.env.CONVEYOR_RACE_SEED === undefined ? undefined : Number(process.env.CONVEYOR_RACE_SEED);

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.close();
});

describe('the reconcile queue under a race', () => {
  // Partitioned, every worker process consumes all three BullMQ queues: the per-key promises must hold in each.
  for (const partitions of [1, 3]) {
    const split = partitions === 1 ? '' : `, the queue in ${partitions} partitions`;
    it(`${size.events} bursty events for ${size.keys} keys on 2 worker processes, one SIGKILLed${split}: nothing lost, no overlap, nothing left`, async () => {
      const result = await runRace({
        redisUrl: server.url,
        ...size,
        workers: 2,
        concurrency: 4,
        killAt: 0.4,
        lockDurationMs: 2_000,
        stalledIntervalMs: 1_000,
        partitions,
        ...(seed === undefined ? {} : { seed }),
      });
      const summary = `seed ${result.seed}, ${partitions} partition(s), ${result.events} events, ${result.durationMs} ms\n${describeReport(result.report)}`;
      assert.ok(result.killed.length >= 1, `a worker was killed (${summary})`);
      assert.ok(result.report.killedRuns >= 1, `the kill cut a reconcile short (${summary})`);
      assert.ok(result.report.runs >= size.keys, `every key was reconciled (${summary})`);
      assert.ok(result.report.ok, summary);
    });
  }
});
