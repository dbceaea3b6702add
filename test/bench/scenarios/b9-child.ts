// B9's other processes: the watcher (metadata list+watch of the Widgets into the controller's queue) and the container workers, each in a process of its own as they run in a cluster.
//
// Usage: node b9-child.ts watcher <server> <token> <redis url> <redis prefix>
//   prints `synced <ms>` once its first list reached the queue; each line on stdin asks for
//   `cpu <user + system µs since start> <watch events handled>`; SIGTERM stops it.
// Usage: node b9-child.ts worker <server> <token> <redis url> <redis prefix> <concurrency> <reconcile ms>
//   prints `ready`, then per reconcile `r <name>`, and `fresh <name> <editedAt> <ms from editedAt to reconcile start>` for
//   a Widget carrying a fresh edit it has not seen yet; SIGTERM closes it. A fresh edit sets spec.size to the
//   time of the edit (epoch ms; seeded Widgets have small sizes): the Widget schema prunes fields it does not declare.
import {
  createLogger,
  createMetricsRegistry,
  defineController,
  KubeApiClient,
  type KubeObject,
  loadConfig,
  ReconcileQueue,
} from '@conveyor/shared';
import { Watcher } from '@conveyor/watcher';
import { startContainerWorker } from '@conveyor/workers/container-worker';
import { simKubeConfig } from '../bench-support.ts';

const [mode, server, token, redisUrl, prefix, concurrencyText, reconcileMsText] = process.argv.slice(2);
if (
  (mode !== 'watcher' && mode !== 'worker') ||
  server === undefined ||
  token === undefined ||
  redisUrl === undefined ||
  prefix === undefined
) {
  process.stderr.write('usage: b9-child.ts watcher|worker <server> <token> <redis url> <redis prefix> [<concurrency> <reconcile ms>]\n');
  process.exit(2);
}

type BenchWidget = KubeObject & { spec?: { size?: number } };
/** Sizes from here up are times of fresh edits. */
const EDITED_SINCE = 1e12;
const reconcileMs = Number(reconcileMsText ?? '0');
const seen = new Set<string>();
const out: string[] = [];
const flush = () => {
  if (out.length > 0) process.stdout.write(`${out.splice(0).join('\n')}\n`);
};

const controller = defineController<BenchWidget>({
  name: 'b9',
  for: { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' },
  async reconcile(widget) {
    const started = Date.now();
    const name = widget.metadata?.name ?? '';
    const editedAt = widget.spec?.size ?? 0;
    if (editedAt >= EDITED_SINCE && !seen.has(`${name} ${editedAt}`)) {
      seen.add(`${name} ${editedAt}`);
      out.push(`fresh ${name} ${editedAt} ${started - editedAt}`);
    }
    out.push(`r ${name}`);
    await new Promise((resolve) => setTimeout(resolve, reconcileMs));
  },
});

const kubeConfig = simKubeConfig(server, token);
const config = loadConfig({
  env: {},
  overrides: {
    'redis.url': redisUrl,
    'redis.prefix': prefix,
    'log.level': 'error',
    'worker.concurrency': Number(concurrencyText ?? '1'),
    // The bench measures the pipeline, not the shared API budget (B6 does).
    'apiBudget.qps': 1_000_000,
    'apiBudget.burst': 1_000_000,
  },
});
const logger = createLogger({ level: 'silent' });
const cpuAtStart = process.cpuUsage();

if (mode === 'watcher') {
  const registry = createMetricsRegistry();
  const queue = new ReconcileQueue({ controller: controller.name, redis: config.redis, queue: config.queue }, { logger });
  const started = performance.now();
  const watcher = new Watcher({
    controller,
    transport: new KubeApiClient({ kubeConfig }),
    queue,
    registry,
    logger,
    resyncPeriodMs: 0,
  });
  process.stdout.write('starting\n');
  await watcher.start();
  await watcher.waitReady(600_000);
  process.stdout.write(`synced ${Math.round(performance.now() - started)}\n`);
  process.stdin.on('data', async () => {
    const cpu = process.cpuUsage(cpuAtStart);
    const events = ((await registry.getSingleMetric('conveyor_watch_events_total')?.get())?.values ?? []).reduce((s, v) => s + v.value, 0);
    process.stdout.write(`cpu ${cpu.user + cpu.system} ${events}\n`);
  });
  process.once('SIGTERM', async () => {
    await watcher.stop(2_000);
    await queue.close();
    process.exit(0);
  });
} else {
  const worker = await startContainerWorker({ controller, config, kubeConfig, logger, http: false });
  const timer = setInterval(flush, 20);
  process.stdout.write('ready\n');
  process.once('SIGTERM', async () => {
    await worker.close(5_000);
    clearInterval(timer);
    flush();
    process.exit(0);
  });
}
