// B3 burst drain: N requests already queued, a 50 ms reconcile, concurrency 100 → drain time versus the ideal N / concurrency × duration.
import { ReconcileQueue, startQueueWorker } from '@conveyor/shared';
import { widgetKey } from '@conveyor/test/support/queue-fixtures';
import { bySize, Cleanups, queueSettingsOf, round, type Scenario, silentLogger, sleep, startRedis, until } from '../bench-support.ts';

export const burstDrain: Scenario = async ({ size, log, lambda }) => {
  const n = bySize(size, { tiny: 200, default: 3_000, large: 10_000 });
  const concurrency = 100;
  const durationMs = bySize(size, { tiny: 20, default: 50, large: 50 });
  const cleanups = new Cleanups();
  try {
    const { config, close } = await startRedis();
    cleanups.add(close);
    const settings = queueSettingsOf(config, 'b3');
    const queue = new ReconcileQueue(settings, { logger: silentLogger });
    cleanups.add(() => queue.close());
    log(`B3: enqueueing ${n} requests`);
    await queue.enqueueBatch(Array.from({ length: n }, (_, i) => ({ key: widgetKey(`w-${i}`), reason: 'event' as const })));

    let done = 0;
    const started = Date.now();
    const worker = startQueueWorker({
      ...settings,
      concurrency,
      logger: silentLogger,
      processor: async () => {
        await sleep(durationMs);
        done += 1;
        return { kind: 'done' };
      },
    });
    cleanups.add(() => worker.close(5_000));
    await until(`${n} reconciles`, () => done >= n, 60_000 + n * durationMs, 5);
    const drainMs = Date.now() - started;
    const idealMs = (n / concurrency) * durationMs;
    const ratio = drainMs / idealMs;
    log(`B3: drained ${n} in ${drainMs} ms (ideal ${idealMs} ms)`);
    return {
      id: 'B3',
      title: 'Burst drain',
      setup: `${n} requests queued, reconcile ${durationMs} ms (a sleep), one worker at concurrency ${concurrency}`,
      figure: { label: 'drain time', value: drainMs, unit: 'ms' },
      reference: { label: 'ideal N / concurrency × duration', value: idealMs, unit: 'ms' },
      ratio: round(ratio, 3),
      goal: { text: 'drain ≤ 1.10 × ideal', holds: ratio <= 1.1 },
      details: {
        requests: n,
        concurrency,
        reconcileMs: durationMs,
        reconcilesPerSecond: round(n / (drainMs / 1000), 0),
        lambda: lambda ? 'not run: the bench does not drive the Lambda dispatcher yet' : 'not run (use --lambda)',
      },
      chart: {
        title: `B3: draining ${n} requests (ms)`,
        unit: 'ms',
        bars: [
          { label: 'ideal', value: idealMs },
          { label: 'container worker', value: drainMs },
        ],
      },
      notes: [],
    };
  } finally {
    await cleanups.run();
  }
};
