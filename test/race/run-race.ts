// The race test's driver: worker processes on one queue, random bursty events, a SIGKILL mid-run, then the detector's verdict.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { configSchema } from '@conveyor/shared/config';
import type { ObjectKey } from '@conveyor/shared/object-key';
import { type QueueSettings, ReconcileQueue } from '@conveyor/shared/queue/reconcile-queue';
import type { RequestReason } from '@conveyor/shared/queue/request-payload';
import { Redis } from 'ioredis';
import { detectRaces, type KilledWorker, type LastEvent, type RaceRecord, type RaceReport } from './detector.ts';
import type { RaceWorkerConfig } from './race-worker.ts';
import { queueLeftovers, type RaceKeys, raceKeys, readRaceLog, recordEvents, seededRandom } from './recorder.ts';

export interface RaceOptions {
  redisUrl: string;
  keys: number;
  events: number;
  /** Worker processes running at once. @defaultValue 2 */
  workers?: number;
  /** Reconciles per worker process. @defaultValue 4 */
  concurrency?: number;
  /** SIGKILL the first worker mid-reconcile (and start a replacement) once this share of events was sent; `false` for none. @defaultValue 0.4 */
  killAt?: number | false;
  seed?: number;
  /** @defaultValue 2000 */
  lockDurationMs?: number;
  /** @defaultValue 1000 */
  stalledIntervalMs?: number;
  /** `queue.partitions`: how many BullMQ queues the requests are split into. @defaultValue 1 */
  partitions?: number;
  /** How long the queue may take to drain after the last event. @defaultValue 120 s */
  drainTimeoutMs?: number;
}

export interface RaceResult {
  report: RaceReport;
  seed: number;
  events: number;
  durationMs: number;
  killed: KilledWorker[];
}

const WORKER_MODULE = fileURLToPath(new URL('./race-worker.ts', import.meta.url));

function raceKey(i: number): ObjectKey {
  return { group: 'example.com', version: 'v1', plural: 'widgets', namespace: 'race', name: `k${i}` };
}

/** Reconciles of `worker` that started and have not ended, judged from the log (its recent tail, by default). */
async function runsInFlight(redis: Redis, keys: RaceKeys, worker: number, from = -400): Promise<number> {
  const open = new Set<string>();
  for (const line of await redis.lrange(keys.log, from, -1)) {
    const record = JSON.parse(line) as RaceRecord;
    if (record.t === 'start' && record.worker === worker) open.add(record.run);
    else if (record.t === 'end') open.delete(record.run);
  }
  return open.size;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs one race: `workers` child processes run `startQueueWorker` on one queue while this process
 * sends `events` random, bursty requests for `keys` keys through `ReconcileQueue` (single enqueues
 * fired concurrently, and batches). Reconciles take 1–4 ms; 4 % throw, 4 % requeue after 20 ms, 0.5 %
 * report throttling (the whole queue pauses 30 ms).
 * Once `killAt` of the events are sent, the first worker is SIGKILLed and replaced. After the last
 * event the queue must drain; then the workers stop and the detector judges the log.
 *
 * Every worker process is killed on the way out, also when something throws.
 */
export async function runRace(options: RaceOptions): Promise<RaceResult> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const config = configSchema.parse({
    redis: { url: options.redisUrl },
    queue: {
      lockDuration: `${options.lockDurationMs ?? 2_000}ms`,
      stalledInterval: `${options.stalledIntervalMs ?? 1_000}ms`,
      // A transient error every 25 reconciles never parks a request with this many attempts.
      attempts: 50,
      backoff: { base: '5ms', max: '100ms', jitter: 0.5 },
      partitions: options.partitions ?? 1,
    },
  });
  const settings: QueueSettings = { controller: `race-${randomUUID().slice(0, 8)}`, redis: config.redis, queue: config.queue };
  const keys = raceKeys(settings.controller);
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new ReconcileQueue(settings);
  const children = new Set<ChildProcess>();
  let workerSeed = seed;

  const startWorker = async (): Promise<ChildProcess> => {
    const workerConfig: RaceWorkerConfig = {
      settings,
      concurrency: options.concurrency ?? 4,
      keys,
      behaviour: { minMs: 1, maxMs: 4, errorRate: 0.04, requeueRate: 0.04, requeueMs: 20, throttleRate: 0.005, throttleMs: 30 },
      seed: ++workerSeed,
    };
    const child = fork(WORKER_MODULE, [], {
      env: { ...process.env, RACE_WORKER: JSON.stringify(workerConfig) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`race worker exited with ${code} before it was ready`)));
    });
    return child;
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve));

  const started = Date.now();
  const killed: KilledWorker[] = [];
  try {
    const workers: ChildProcess[] = [];
    for (let i = 0; i < (options.workers ?? 2); i++) workers.push(await startWorker());

    const last = new Map<string, LastEvent>();
    const pickKey = () => {
      // Bursty and skewed: half the events hit the first tenth of the keys.
      const hot = Math.max(1, Math.floor(options.keys / 10));
      return raceKey(random() < 0.5 ? Math.floor(random() * hot) : Math.floor(random() * options.keys));
    };
    const killAt = options.killAt ?? 0.4;
    let sent = 0;
    let cutShort = false;
    while (sent < options.events) {
      const size = Math.min(options.events - sent, 1 + Math.floor(random() ** 2 * 120));
      const burst = Array.from({ length: size }, pickKey);
      const reason: RequestReason = random() < 0.1 ? 'manual' : 'event';
      await recordEvents(redis, keys, burst, last);
      if (random() < 0.3) {
        await queue.enqueueBatch(burst.map((key) => ({ key, reason })));
      } else {
        await Promise.all(burst.map((key) => queue.enqueue({ key, reason })));
      }
      sent += size;
      // Now and then a resync of a few keys: it changes nothing, so it bumps no sequence number.
      if (random() < 0.05) {
        await queue.enqueueBatch(Array.from({ length: 20 }, () => ({ key: pickKey(), reason: 'resync' as const })));
      }
      const victim = workers[0];
      // Kill only while the victim is inside a reconcile, so a run is really cut short and its job must be
      // recovered. The run may still end between the look at the log and the signal; then the replacement
      // is killed later too, until a kill has cut a run short (at most 5 kills).
      if (
        killAt !== false &&
        !cutShort &&
        killed.length < 5 &&
        sent >= options.events * killAt &&
        victim?.pid !== undefined &&
        (await runsInFlight(redis, keys, victim.pid)) > 0
      ) {
        victim.kill('SIGKILL');
        await exited(victim);
        killed.push({ worker: victim.pid, at: Date.now() });
        cutShort = (await runsInFlight(redis, keys, victim.pid, 0)) > 0;
        workers[0] = await startWorker();
      }
      // Quiet gaps of varying length, so keys go idle and busy again.
      await sleep(random() < 0.1 ? 20 + random() * 80 : random() * 10);
    }

    const deadline = Date.now() + (options.drainTimeoutMs ?? 120_000);
    for (;;) {
      const depth = await queue.getDepth();
      const pending = depth.waiting + depth.prioritized + depth.delayedDue + depth.delayedLater + depth.active;
      if (pending === 0) break;
      if (Date.now() > deadline) throw new Error(`queue did not drain: ${JSON.stringify(depth)} (seed ${seed})`);
      await sleep(50);
    }
    for (const child of [...children]) child.kill('SIGTERM');
    await Promise.all([...children].map(exited));

    const records = await readRaceLog(redis, keys);
    const leftovers = await queueLeftovers(redis, settings.redis.prefix, settings.controller, settings.queue.partitions);
    return { report: detectRaces(records, last, killed, leftovers), seed, events: sent, durationMs: Date.now() - started, killed };
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([...children].map(exited));
    await queue.close();
    await redis.del(keys.seq, keys.log);
    redis.disconnect();
  }
}
