// `conveyor status`: each controller's queue at a glance — depth by state, parked requests with reasons, rates, workers.
import { formatKey, readDesiredWorkers, readReconcileStats, redisEndpoint } from '@conveyor/shared';
import { COMMON_FLAGS, type Command, EXIT, type Flags, parseFlags, UsageError } from './command.ts';
import { type ControllerQueue, openControllerQueues } from './controller-queue.ts';

const FLAGS = {
  controller: COMMON_FLAGS.controllers,
  name: COMMON_FLAGS.name,
  config: COMMON_FLAGS.config,
  json: COMMON_FLAGS.json,
  top: { type: 'string', value: '<n>', description: 'how many parked requests to list, newest first (0 to 1000)', defaultText: '10' },
  timeout: COMMON_FLAGS.timeout,
} as const satisfies Flags;

export const statusCommand: Command = {
  name: 'status',
  summary: 'show queue depth, parked requests and workers',
  usage: 'conveyor status [--controller <module> …] [--name <controller>] [--config <file>] [--json] [--top <n>] [--timeout <duration>]',
  flags: FLAGS,
  async run(args, io) {
    const { values } = parseFlags(args, FLAGS);
    const top = values.top === undefined ? 10 : Number(values.top);
    if (!Number.isInteger(top) || top < 0 || top > 1_000)
      throw new UsageError(`--top must be a whole number from 0 to 1000, got "${values.top}"`);
    const opened = await openControllerQueues(values, io);
    try {
      const reports = [];
      for (const one of opened) reports.push(await readStatus(one, top));
      if (values.json === true) {
        // One controller: its report, as always; several: every one's, in the order loaded.
        io.out(JSON.stringify(reports.length === 1 ? reports[0]?.report : { controllers: reports.map((r) => r.report) }, null, 2));
        return EXIT.ok;
      }
      for (const { lines } of reports) for (const line of lines) io.out(line);
      return EXIT.ok;
    } finally {
      await Promise.all(opened.map((o) => o.queue.close()));
    }
  },
};

/** One controller's status: the report `--json` prints, and the lines of text. */
async function readStatus({ config, controller, queue, deadline }: ControllerQueue, top: number) {
  const connection = queue.redis;
  const [depth, parked, workers, desired, lastMinute, blocked] = await deadline.wait(redisEndpoint(config.redis), () =>
    Promise.all([
      queue.getDepth(),
      top === 0 ? Promise.resolve([]) : queue.listParked(top),
      queue.getWorkerCount(),
      readDesiredWorkers(connection, config.redis, controller.name),
      readReconcileStats(connection, config.redis, controller.name, 60_000),
      queue.getBlocked(),
    ]),
  );
  const backlog = depth.waiting + depth.prioritized + depth.delayedDue;
  const report = {
    controller: controller.name,
    /** BullMQ queues the controller's queue is split into (`queue.partitions`); every figure below sums them. */
    partitions: queue.locations.length,
    backlog,
    depth,
    rates: {
      reconcilesPerSecond: round(lastMinute.perSecond),
      errorsLastMinute: lastMinute.errors,
      meanReconcileMs: lastMinute.meanMs === undefined ? null : Math.round(lastMinute.meanMs),
    },
    workers: { connected: workers, desired: desired ?? null },
    /** Set while a failure no retry can fix pauses the whole queue. */
    blocked:
      blocked === undefined
        ? null
        : {
            code: blocked.code,
            message: blocked.message,
            since: new Date(blocked.since).toISOString(),
            until: new Date(blocked.until).toISOString(),
          },
    parked: parked.map((p) => ({
      key: formatKey(p.key),
      reason: p.reason,
      error: p.error,
      attempts: p.attempts,
      parkedAt: new Date(p.parkedAt).toISOString(),
    })),
  };
  const lines: string[] = [];
  lines.push(`controller ${controller.name}${report.partitions > 1 ? ` (queue in ${report.partitions} partitions)` : ''}`);
  if (report.blocked !== null) {
    lines.push(
      `  PAUSED    since ${report.blocked.since}, next try at ${report.blocked.until}: no request can succeed until this is fixed`,
    );
    lines.push(`            ${report.blocked.code}: ${report.blocked.message}`);
  }
  lines.push(`  backlog   ${backlog}   (waiting ${depth.waiting}, prioritized ${depth.prioritized}, delayed due ${depth.delayedDue})`);
  lines.push(
    `  by lane   event ${depth.lanes.event}, manual ${depth.lanes.manual}, resync ${depth.lanes.resync} (${depth.resyncBacklog} not yet admitted)`,
  );
  lines.push(`  later     ${depth.delayedLater}   (requeue-after and backoff)`);
  lines.push(`  active    ${depth.active}`);
  lines.push(`  parked    ${depth.parked}`);
  lines.push(
    `  rate      ${report.rates.reconcilesPerSecond}/s over the last minute, ${lastMinute.errors} errors, mean ${report.rates.meanReconcileMs ?? '-'} ms`,
  );
  lines.push(`  workers   ${workers} connected, ${desired ?? '-'} desired`);
  if (report.parked.length > 0) {
    lines.push(`  parked requests (newest first, top ${top}):`);
    for (const p of report.parked) lines.push(`    ${p.key}  attempts ${p.attempts}  ${p.error}`);
    lines.push('  the next resync retries them; now: conveyor parked retry <key> | --all (or discard, once you know they should not run)');
  }
  return { report, lines };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
