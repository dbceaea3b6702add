// B5 churn: many events over few keys while every worker is busy → reconciles per event, and every key reconciled at its final state.
import { ReconcileQueue, startQueueWorker } from '@conveyor/shared';
import { widgetKey } from '@conveyor/test/support/queue-fixtures';
import {
  below,
  bySize,
  Cleanups,
  inEveryRun,
  queueSettingsOf,
  round,
  type Scenario,
  silentLogger,
  sleep,
  startRedis,
  until,
} from '../bench-support.ts';

export const churn: Scenario = async ({ size, log }) => {
  const events = bySize(size, { tiny: 500, default: 20_000, large: 100_000 });
  const keys = bySize(size, { tiny: 20, default: 200, large: 1_000 });
  const concurrency = 20;
  const durationMs = 20;
  const batch = 500;
  const cleanups = new Cleanups();
  try {
    const { config, close } = await startRedis();
    cleanups.add(close);
    const settings = queueSettingsOf(config, 'b5');
    const queue = new ReconcileQueue(settings, { logger: silentLogger });
    cleanups.add(() => queue.close());

    // The "objects": a version per key that each event bumps. A reconcile reads the current version
    // when it starts (level-based, like a worker's GET) and records it.
    const current = new Map<string, number>();
    const reconciledAt = new Map<string, number>();
    let reconciles = 0;
    let running = 0;
    let overlap = 0;
    const runningKeys = new Set<string>();
    const worker = startQueueWorker({
      ...settings,
      concurrency,
      logger: silentLogger,
      processor: async (request) => {
        const name = request.key.name;
        if (runningKeys.has(name)) overlap += 1;
        runningKeys.add(name);
        running += 1;
        const seen = current.get(name) ?? 0;
        await sleep(durationMs);
        reconciledAt.set(name, seen);
        reconciles += 1;
        running -= 1;
        runningKeys.delete(name);
        return { kind: 'done' };
      },
    });
    cleanups.add(() => worker.close(5_000));

    log(`B5: ${events} events over ${keys} keys`);
    const started = Date.now();
    for (let sent = 0; sent < events; sent += batch) {
      const requests = [];
      for (let i = sent; i < Math.min(events, sent + batch); i++) {
        const name = `k-${(i * 7919) % keys}`;
        current.set(name, (current.get(name) ?? 0) + 1);
        requests.push({ key: widgetKey(name), reason: 'event' as const });
      }
      await queue.enqueueBatch(requests);
    }
    const enqueueMs = Date.now() - started;
    const converged = () => [...current].every(([name, version]) => reconciledAt.get(name) === version);
    await until('every key reconciled at its final version', () => converged() && running === 0, 120_000, 20);
    const totalMs = Date.now() - started;
    const perEvent = round(reconciles / events, 4);
    log(`B5: ${reconciles} reconciles for ${events} events`);
    return {
      id: 'B5',
      title: 'Churn',
      setup: `${events} events over ${keys} keys, enqueued in batches of ${batch} while ${concurrency} reconciles of ${durationMs} ms run`,
      figure: { label: 'reconciles per event', value: perEvent, unit: 'reconciles/event' },
      reference: { label: 'one reconcile per event (no merging)', value: 1, unit: 'reconciles/event' },
      ratio: perEvent,
      goal: {
        text: 'every key converged; merged events run once (ratio < 1)',
        checks: [inEveryRun('every key converged', converged()), below('reconciles per event', perEvent, 1)],
      },
      converged: converged(),
      details: {
        events,
        keys,
        reconciles,
        enqueueMs,
        totalMs,
        eventsPerSecond: round(events / (enqueueMs / 1000), 0),
        concurrentRunsOfOneKey: overlap,
      },
      chart: {
        title: `B5: ${events} events over ${keys} keys`,
        unit: 'count',
        bars: [
          { label: 'events', value: events },
          { label: 'reconciles', value: reconciles },
          { label: 'keys', value: keys },
        ],
      },
      notes: [],
    };
  } finally {
    await cleanups.run();
  }
};
