// Chaos at CI size: a watcher and workers as real processes under churn, through API 429 and 500 bursts, a Redis restart that loses everything, and a worker SIGKILL — every Widget must still converge.
//
// What it holds, so these properties stay true: nothing is lost (every live Widget ends reconciled at
// its generation with its child and external record, every deleted one gone with its record), no
// request is parked by transient faults, every output line of every process is JSON, and each
// process still stops cleanly on SIGTERM afterwards. About 20 s on a quiet 2-core machine (17–22 s measured), more when loaded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeRedisConnection, createLogger, createRedisConnection, type RedisConnection } from '@conveyor/shared';
import { type ConveyorProcess, nonJsonLines, spawnConveyor } from '@conveyor/test/support/conveyor-process';
import type { Widget } from '../../examples/widgets/controller.ts';
import { type ConvergenceReport, checkConvergence } from '../../examples/widgets/demo/convergence.ts';
import { ExampleRecords } from '../../examples/widgets/example-records.ts';
import { CONTROLLER_MODULE, startWidgetWorld, WIDGETS, type WidgetWorld, waitFor } from '../../examples/widgets/widget-harness.ts';

const SEEDED = 40;
/** Each step of the fault schedule is this far apart, with churn running throughout. */
const STEP_MS = 1_500;

describe('chaos: Redis restart, API 429 and 500 bursts and a worker SIGKILL, under churn', () => {
  let world: WidgetWorld;
  let dir: string;
  let configFile: string;
  const processes: ConveyorProcess[] = [];

  before(async () => {
    world = await startWidgetWorld({
      // Quick recovery of a SIGKILLed worker's jobs (lockDuration + stalledInterval), and attempts enough
      // that transient 500s never park a request.
      queue: { lockDuration: '3s', stalledInterval: '1s', attempts: 50, backoff: { base: '100ms', max: '2s' } },
      worker: { concurrency: 5, shutdownGrace: '5s' },
      watcher: { shutdownGrace: '5s', maxBackoff: '2s' },
      apiBudget: { qps: 2_000, burst: 500 },
    });
    dir = mkdtempSync(join(tmpdir(), 'conveyor-chaos-'));
    configFile = world.writeConfigFile(dir, { log: { level: 'info' } });
    await world.createWidgets(SEEDED);
  });
  after(async () => {
    for (const p of processes) p.kill();
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (command: 'watch' | 'worker') => {
    const p = spawnConveyor([command, '--controller', CONTROLLER_MODULE, '--config', configFile]);
    processes.push(p);
    return p;
  };

  it('ends with every Widget converged, nothing parked, and only JSON in every log', async () => {
    const watcher = start('watch');
    const workers = [start('worker'), start('worker')];
    await watcher.waitForOutput(/"msg":"serving \/healthz/);
    for (const w of workers) await w.waitForOutput(/"worker started"/);

    const live = new Set(Array.from({ length: SEEDED }, (_, i) => `w-${i}`));
    const deleted: string[] = [];
    let churning = true;
    let created = 0;
    let round = 0;
    // Spec edits, creates and deletes (through the finalizer) until the faults are over. A write the
    // API refuses (a 500 or 429 burst hits users too) is simply tried again next round.
    const churn = (async () => {
      while (churning) {
        round += 1;
        const names = [...live];
        const edits = names.filter((_, i) => (i + round) % 7 === 0);
        await Promise.allSettled(
          edits.map((name) =>
            world.client.patch<Widget>(
              { ...WIDGETS, namespace: 'default', name },
              { type: 'merge', body: { spec: { size: 1_000 + round } } },
            ),
          ),
        );
        if (round % 3 === 0) {
          const name = `c-${created}`;
          const made = await world.client
            .create<Widget>(WIDGETS, {
              apiVersion: 'example.com/v1',
              kind: 'Widget',
              metadata: { name, namespace: 'default' },
              spec: { size: round },
            })
            .then(
              () => true,
              () => false,
            );
          if (made) {
            created += 1;
            live.add(name);
          }
        }
        if (round % 4 === 0) {
          const victim = names[(round * 13) % names.length];
          if (victim !== undefined && (await world.client.delete({ ...WIDGETS, namespace: 'default', name: victim }).catch(() => false))) {
            live.delete(victim);
            deleted.push(victim);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    })();

    const pause = () => new Promise((resolve) => setTimeout(resolve, STEP_MS));
    await pause();
    // A burst of 429s: the queue pauses for Retry-After; nothing is spent or lost.
    world.sim.faults.throttle({ share: 0.5, count: 60, retryAfterSeconds: 1 });
    await pause();
    // A burst of 500s: per-key backoff.
    world.sim.faults.serverErrors({ share: 0.5, count: 60 });
    await pause();
    // Redis restarts empty: the queue, the cursor and the external records are gone; the watcher sees
    // the epoch vanish and relists, the workers reconnect.
    await world.redis.restart();
    await pause();
    // A worker dies mid-churn; its jobs come back after their locks expire; a replacement starts.
    const [victim] = workers;
    victim?.child.kill('SIGKILL');
    await victim?.exited;
    const replacement = start('worker');
    await replacement.waitForOutput(/"worker started"/);
    await pause();
    churning = false;
    await churn;
    world.sim.faults.reset();

    const redis: RedisConnection = createRedisConnection(world.config.redis, {
      logger: createLogger({ level: 'silent' }),
      purpose: 'test',
    });
    const records = new ExampleRecords(redis, world.config.redis.prefix);
    let report: ConvergenceReport | undefined;
    try {
      // A bound on how long convergence may take on a loaded machine, not a speed goal.
      await waitFor(
        'every Widget converged',
        async () => {
          report = await checkConvergence({ client: world.client, records, namespace: 'default', expectedLive: live, deleted });
          return report.holds;
        },
        120_000,
        1_000,
      ).catch((error: unknown) => {
        const logs = processes.map((p, i) => `--- process ${i} (last lines)\n${p.output().split('\n').slice(-15).join('\n')}`);
        throw new Error(`${String(error)}\n${JSON.stringify(report, null, 2)}\n${logs.join('\n')}`);
      });
    } finally {
      await closeRedisConnection(redis);
    }
    assert.equal(report?.converged, live.size);
    assert.ok(deleted.length > 0 && created > 0, `the churn deleted (${deleted.length}) and created (${created}) Widgets`);
    assert.equal((await world.queue.getDepth()).parked, 0, 'no request parked by a transient fault');

    const running = [watcher, workers[1] as ConveyorProcess, replacement];
    for (const p of running) assert.equal((await p.stop('SIGTERM')).code, 0, p.output().slice(-2_000));
    for (const p of running) assert.deepEqual(nonJsonLines(p.output()), [], 'only JSON log lines');
    // The SIGKILLed worker's complete lines: a kill may cut its last line short.
    const victimOutput = victim?.output() ?? '';
    assert.deepEqual(nonJsonLines(victimOutput.slice(0, victimOutput.lastIndexOf('\n'))), [], 'only JSON log lines');
    assert.match(watcher.output(), /queue epoch changed|relisting and enqueueing every object/, 'the watcher noticed Redis lost the queue');
  });
});
