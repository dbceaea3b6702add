// Child process of the race test: one worker process running startQueueWorker with the recording reconcile until SIGTERM.

import { startQueueWorker } from '@conveyor/shared/queue/queue-worker';
import type { QueueSettings } from '@conveyor/shared/queue/reconcile-queue';
import { Redis } from 'ioredis';
import { type RaceKeys, type ReconcileBehaviour, recordingProcessor, seededRandom } from './recorder.ts';

/** What the parent passes in `RACE_WORKER` (JSON). */
export interface RaceWorkerConfig {
  settings: QueueSettings;
  concurrency: number;
  keys: RaceKeys;
  behaviour: ReconcileBehaviour;
  seed: number;
}

const config = JSON.parse(process.env.RACE_WORKER ?? 'null') as RaceWorkerConfig | null;
if (config === null) {
  process.stderr.write('race-worker: RACE_WORKER (JSON config) is not set\n');
  process.exit(2);
}

const redis = new Redis(config.settings.redis.url, { maxRetriesPerRequest: null });
const worker = startQueueWorker({
  ...config.settings,
  concurrency: config.concurrency,
  processor: recordingProcessor({
    redis,
    keys: config.keys,
    worker: process.pid,
    random: seededRandom(config.seed),
    behaviour: config.behaviour,
  }),
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  worker
    .close(10_000)
    .then(() => redis.quit())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`race-worker: ${String(error)}\n`);
        process.exit(1);
      },
    );
});
// The parent dies without telling us (a crashed test run): do not outlive it.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
process.send?.('ready');
