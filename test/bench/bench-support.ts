// What every benchmark scenario shares: the result shape, size presets, a private Redis and simulator, timing and percentile helpers.
import { randomUUID } from 'node:crypto';
import { type Config, type ConfigInput, createLogger, type Logger, loadConfig, type QueueSettings } from '@conveyor/shared';
import { RedisServer } from '@conveyor/test/support/redis-server';
import { KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import { flatten } from '../../examples/widgets/widget-harness.ts';

export type ScenarioId = 'B1' | 'B2' | 'B3' | 'B4' | 'B5' | 'B6' | 'B7' | 'B8' | 'B9' | 'B10';
export const SCENARIO_IDS: readonly ScenarioId[] = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'B10'];

/** `tiny` is the smoke test's (seconds, no meaning: no goal is judged), `default` about a minute a run, `large` the issues' full sizes. */
export type SizeName = 'tiny' | 'default' | 'large';

/**
 * How many times `conveyor bench` runs each scenario unless `--runs` says otherwise: three, so the median
 * ignores one outlying run; one at tiny size, whose figures mean nothing and whose run is the test suite's smoke test.
 */
export const DEFAULT_RUNS: Record<SizeName, number> = { tiny: 1, default: 3, large: 3 };

export interface Measure {
  label: string;
  value: number;
  unit: string;
}

/** One bar of a scenario's chart. */
export interface Bar {
  label: string;
  value: number;
}

/**
 * One condition of a goal. A threshold is judged on the median over the runs, because one slow or fast run says
 * little on a shared machine; a correctness condition (every key converged, nothing enqueued) must hold in every
 * run, because a single failure is a bug, not noise.
 */
export type GoalCheck =
  | { kind: 'threshold'; name: string; value: number; op: '<=' | '<' | '>=' | '>'; limit: number }
  | { kind: 'every-run'; name: string; ok: boolean };

export interface Goal {
  /** The goal in words. `{name}` stands for the detail of that name: the report writes its median (and min–max) there. */
  text: string;
  /** Every one must pass for the goal to hold; none when a scenario only reports. */
  checks: GoalCheck[];
}

export const atMost = (name: string, value: number, limit: number): GoalCheck => ({ kind: 'threshold', name, value, op: '<=', limit });
export const atLeast = (name: string, value: number, limit: number): GoalCheck => ({ kind: 'threshold', name, value, op: '>=', limit });
export const below = (name: string, value: number, limit: number): GoalCheck => ({ kind: 'threshold', name, value, op: '<', limit });
export const inEveryRun = (name: string, ok: boolean): GoalCheck => ({ kind: 'every-run', name, ok });

/** Whether `value` is on the right side of a threshold check's limit. */
export function withinLimit(op: '<=' | '<' | '>=' | '>', value: number, limit: number): boolean {
  if (op === '<=') return value <= limit;
  if (op === '<') return value < limit;
  if (op === '>=') return value >= limit;
  return value > limit;
}

/** Whether one run met its goal on its own; undefined for a scenario that only reports. */
export function holdsIn(goal: Goal): boolean | undefined {
  if (goal.checks.length === 0) return undefined;
  return goal.checks.every((c) => (c.kind === 'every-run' ? c.ok : withinLimit(c.op, c.value, c.limit)));
}

/** What one run of one scenario measured. Notes and the goal's text may name details as `{name}` instead of quoting numbers. */
export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  /** What was run, in words (sizes, concurrency). */
  setup: string;
  figure: Measure;
  reference: Measure;
  /** figure / reference. */
  ratio: number;
  goal: Goal;
  /** Every key reached its final state (scenarios where that is checked). */
  converged?: boolean;
  /** Further figures by name. */
  details: Record<string, number | string | boolean>;
  chart: { title: string; unit: string; bars: Bar[] };
  notes: string[];
}

export interface ScenarioContext {
  size: SizeName;
  /** Progress lines for a person watching (stderr). */
  log: (line: string) => void;
  /** The Lambda dispatcher through serverless-offline is part of B3. */
  lambda: boolean;
}

export type Scenario = (context: ScenarioContext) => Promise<ScenarioResult>;

export const silentLogger: Logger = createLogger({ level: 'silent' });

/** A private Redis (never the machine's 6379) and configuration whose keys no other run uses. */
export async function startRedis(): Promise<{ redis: RedisServer; config: Config; close: () => Promise<void> }> {
  const redis = await RedisServer.start();
  return { redis, config: benchConfig(redis.url), close: () => redis.close() };
}

export function benchConfig(redisUrl: string, extra: ConfigInput = {}): Config {
  return loadConfig({
    env: {},
    overrides: flatten({
      redis: { url: redisUrl, prefix: `b${randomUUID().slice(0, 8)}` },
      log: { level: 'error' },
      ...(extra as Record<string, unknown>),
    }),
  });
}

export function queueSettingsOf(config: Config, controller: string): QueueSettings {
  return { controller, redis: config.redis, queue: config.queue };
}

const pending = new Set<Cleanups>();

/** Runs the cleanups in reverse order, each even when an earlier one failed. */
export class Cleanups {
  private readonly steps: (() => Promise<unknown> | unknown)[] = [];
  constructor() {
    pending.add(this);
  }
  add(step: () => Promise<unknown> | unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    pending.delete(this);
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // A benchmark's teardown must go on: the other servers still have to stop.
      }
    }
  }
}

/** Stops everything a scenario still has running (Redis, simulator, child processes): for Ctrl-C and SIGTERM. */
export async function runPendingCleanups(): Promise<void> {
  for (const cleanups of [...pending].reverse()) await cleanups.run();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until true; throws naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`benchmark timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The p-th percentile (0–100) of `values`, nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Redis's own CPU seconds (user + system), from INFO cpu. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`\\b${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Calls and microseconds of each command Redis ran since it started (INFO commandstats), by command name. */
export async function redisCommandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await redis.info('commandstats');
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1] ?? '', { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

/** Picks the value of a size preset. */
export function bySize<T>(size: SizeName, values: Record<SizeName, T>): T {
  return values[size];
}

/** The Widget resource as a controller spec names it. */
export const WIDGET_RESOURCE = { group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' } as const;

/**
 * Creates Widgets `<prefix>0…<prefix>n-1` in `default`, `parallel` requests at a time, shaped like a
 * typical custom resource: a few labels, an annotation, a small spec (the simulator adds managedFields).
 */
export async function createWidgets(
  create: (object: Record<string, unknown>) => Promise<unknown>,
  n: number,
  options: { prefix?: string; parallel?: number; extra?: (i: number) => Record<string, unknown> } = {},
): Promise<string[]> {
  const prefix = options.prefix ?? 'w-';
  const parallel = options.parallel ?? 32;
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await create({
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: {
          name: names[i],
          namespace: 'default',
          labels: { 'app.kubernetes.io/name': 'widget', 'app.kubernetes.io/part-of': 'bench', tier: i % 3 === 0 ? 'gold' : 'silver' },
          annotations: { 'example.com/owner-team': `team-${i % 17}`, 'example.com/description': 'a widget made by the benchmark' },
        },
        spec: { color: i % 2 === 0 ? 'blue' : 'green', size: i, ...(options.extra?.(i) ?? {}) },
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, lane));
  return names;
}

/** A create function for `createWidgets` that POSTs straight to the simulator (cheaper than a full client per call). */
export function simCreate(sim: { url: string; token: string }): (object: Record<string, unknown>) => Promise<void> {
  const url = `${sim.url}/apis/example.com/v1/namespaces/default/widgets`;
  return async (object) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(object),
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`creating a Widget answered ${response.status}`);
  };
}

/** A JSON merge patch straight to the simulator; resolves once it answered 2xx. */
export async function simMergePatch(sim: { url: string; token: string }, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${sim.url}${path}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`PATCH ${path} answered ${response.status}`);
}

/** A KubeConfig for the simulator at `server` with its bearer token: how a benchmark's child process reaches the simulator. */
export function simKubeConfig(server: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'sim', server, skipTLSVerify: true }],
    users: [{ name: 'sim', token }],
    contexts: [{ name: 'sim', cluster: 'sim', user: 'sim', namespace: 'default' }],
    currentContext: 'sim',
  });
  return kc;
}

/** A cursor store saying every existing object was enqueued by an earlier run: a watcher's first list then enqueues nothing. */
export function cursorAt(resourceVersion: () => number): { get: () => Promise<string>; set: () => Promise<void> } {
  return { get: async () => String(resourceVersion()), set: async () => {} };
}
