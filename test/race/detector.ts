// The race test's judge: reads the log of every reconcile and the events that were sent, and reports lost updates and overlaps.

/** One line of the reconcile log: a worker writes `start` when a reconcile begins and `end` when it returns. */
export type RaceRecord =
  | {
      t: 'start';
      /** Unique per reconcile: `<worker>:<n>`. */
      run: string;
      /** The object key, formatted. */
      key: string;
      /** Which worker process ran it (its pid). */
      worker: number;
      /** Wall clock (ms) when the reconcile began, taken before `observed` was read. */
      at: number;
      /** The key's latest event sequence number in Redis when the reconcile began (0 when none yet). */
      observed: number;
    }
  | {
      t: 'end';
      run: string;
      /** Wall clock (ms) when the reconcile returned, taken before its outcome was handed to the queue. */
      at: number;
      /** The outcome kind, or `error` for a throw. */
      outcome: string;
    };

/** The last event the harness sent for one key. */
export interface LastEvent {
  seq: number;
  /** Wall clock (ms) taken before the sequence number was written and the request enqueued. */
  at: number;
}

/** A worker process the harness SIGKILLed, and when its exit was seen. */
export interface KilledWorker {
  worker: number;
  at: number;
}

export interface Run {
  run: string;
  key: string;
  worker: number;
  start: number;
  /** When it returned; for a run of a killed worker that never returned, when the worker was killed. */
  end: number;
  observed: number;
  outcome: string;
  /** Cut short by a SIGKILL. */
  killed: boolean;
}

export interface RaceReport {
  /** Keys whose last event was not followed by a reconcile that started after it and saw it. */
  lostUpdates: { key: string; lastEvent: LastEvent; finalRun: Run | undefined }[];
  /** Pairs of reconciles of one key that ran at the same time. */
  overlaps: { key: string; first: Run; second: Run }[];
  /** Runs that began but never returned although their worker was not killed. */
  unfinished: Run[];
  /** Jobs, dedup keys and other queue state left in Redis after the queue drained. */
  leftovers: string[];
  runs: number;
  /** Runs cut short by a SIGKILL (their jobs had to be recovered from a dead worker). */
  killedRuns: number;
  ok: boolean;
}

/**
 * Checks the race test's three promises against the reconcile log.
 *
 * - **No lost update:** for every key, the reconcile that started last must have started after the
 *   key's last event was sent and must have observed that event's sequence number.
 * - **No overlap:** no two reconciles of one key may run at the same time. A reconcile of a worker
 *   that was SIGKILLed has no `end`; it is taken to end when the harness saw the worker exit. That is
 *   exact (a dead process runs nothing), so a second run of the key that started *before* the kill
 *   is still an overlap, and one that started after it (the stalled job picked up by another worker,
 *   once the dead worker's lock expired) is not. What the detector cannot see, and the harness avoids
 *   by keeping reconciles short against `lockDuration`, is a *live* worker losing its lock: that is the
 *   documented lock-loss caveat (DESIGN §3), and it would show up here as a real overlap.
 * - **Nothing left:** `leftovers` is passed through; any entry fails the run.
 *
 * A run that never ended on a worker that was not killed is reported as `unfinished`.
 */
export function detectRaces(
  records: readonly RaceRecord[],
  lastEvents: ReadonlyMap<string, LastEvent>,
  killed: readonly KilledWorker[] = [],
  leftovers: readonly string[] = [],
): RaceReport {
  const killedAt = new Map(killed.map((k) => [k.worker, k.at]));
  const starts = new Map<string, Extract<RaceRecord, { t: 'start' }>>();
  const ends = new Map<string, Extract<RaceRecord, { t: 'end' }>>();
  for (const record of records) {
    if (record.t === 'start') starts.set(record.run, record);
    else ends.set(record.run, record);
  }
  const unfinished: Run[] = [];
  const byKey = new Map<string, Run[]>();
  for (const start of starts.values()) {
    const end = ends.get(start.run);
    const deathAt = killedAt.get(start.worker);
    const run: Run = {
      run: start.run,
      key: start.key,
      worker: start.worker,
      start: start.at,
      end: end?.at ?? deathAt ?? Number.POSITIVE_INFINITY,
      observed: start.observed,
      outcome: end?.outcome ?? 'killed',
      killed: end === undefined && deathAt !== undefined,
    };
    if (end === undefined && deathAt === undefined) unfinished.push(run);
    const list = byKey.get(run.key) ?? [];
    list.push(run);
    byKey.set(run.key, list);
  }

  const overlaps: RaceReport['overlaps'] = [];
  for (const [key, runs] of byKey) {
    runs.sort((a, b) => a.start - b.start || a.end - b.end);
    // Each run against the one still running that ends last: enough to find every key that overlapped.
    let longest: Run | undefined;
    for (const run of runs) {
      if (longest !== undefined && run.start < longest.end) overlaps.push({ key, first: longest, second: run });
      if (longest === undefined || run.end > longest.end) longest = run;
    }
  }

  const lostUpdates: RaceReport['lostUpdates'] = [];
  for (const [key, lastEvent] of lastEvents) {
    const runs = byKey.get(key) ?? [];
    const finalRun = runs.at(-1);
    const saw = finalRun !== undefined && !finalRun.killed && finalRun.start >= lastEvent.at && finalRun.observed === lastEvent.seq;
    if (!saw) lostUpdates.push({ key, lastEvent, finalRun });
  }

  return {
    lostUpdates,
    overlaps,
    unfinished,
    leftovers: [...leftovers],
    runs: starts.size,
    killedRuns: [...byKey.values()].flat().filter((run) => run.killed).length,
    ok: lostUpdates.length === 0 && overlaps.length === 0 && unfinished.length === 0 && leftovers.length === 0,
  };
}

/** A few lines a person can read when a race run fails. */
export function describeReport(report: RaceReport, limit = 5): string {
  const lines = [
    `${report.runs} reconciles (${report.killedRuns} cut short by SIGKILL); ${report.lostUpdates.length} lost updates, ${report.overlaps.length} overlaps, ` +
      `${report.unfinished.length} unfinished, ${report.leftovers.length} leftovers`,
  ];
  for (const lost of report.lostUpdates.slice(0, limit)) {
    const final = lost.finalRun;
    lines.push(
      `lost update ${lost.key}: last event #${lost.lastEvent.seq} at ${lost.lastEvent.at}; final run ` +
        (final === undefined ? 'none' : `${final.run} started ${final.start} saw #${final.observed}`),
    );
  }
  for (const o of report.overlaps.slice(0, limit)) {
    lines.push(
      `overlap ${o.key}: ${o.first.run} [${o.first.start}, ${o.first.end}] and ${o.second.run} [${o.second.start}, ${o.second.end}]`,
    );
  }
  for (const u of report.unfinished.slice(0, limit)) lines.push(`unfinished ${u.key}: ${u.run} started ${u.start}`);
  for (const key of report.leftovers.slice(0, limit)) lines.push(`left in Redis: ${key}`);
  return lines.join('\n');
}
