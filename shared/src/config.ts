// The one configuration schema and its loader: a YAML/JSON file, then CONVEYOR_* environment overrides, validated at once.
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { closest } from './did-you-mean.ts';
import { parseDuration } from './duration.ts';
import { ConfigError, type ConfigProblem, errorMessage } from './errors.ts';
import { MAX_PARTITIONS } from './queue/redis-keys.ts';

/** A duration string ("500ms", "30s", "5m", "10h") parsed to milliseconds. */
const duration = () =>
  z.preprocess(
    // A bare YAML number (`base: 30`) reaches us as a number; let parseDuration say it lacks a unit.
    (v) => (typeof v === 'number' ? String(v) : v),
    z.string().transform((text, ctx) => {
      try {
        return parseDuration(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: errorMessage(error) });
        return z.NEVER;
      }
    }),
  );

// Environment overrides arrive as strings; accept "12", "1e3", "0.5" and "true" where numbers and booleans are expected.
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const fromEnvNumber = (v: unknown) => (typeof v === 'string' && NUMBER_TEXT.test(v.trim()) ? Number(v) : v);
const fromEnvBoolean = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);
/** A value as a person wrote it, for "got …" in messages. */
const shown = (input: unknown) => (typeof input === 'string' ? `"${input}"` : (JSON.stringify(input) ?? String(input)));
const bound = (max: number) => (max >= Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`);
/** Whole numbers, with one message in Conveyor's words for every way a value can be wrong. */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const error = (issue: { input?: unknown }) => `must be a whole number from ${min}${bound(max)}, got ${shown(issue.input)}`;
  return z.preprocess(fromEnvNumber, z.number({ error }).int({ error }).min(min, { error }).max(max, { error }));
};
const num = (min: number, max = Number.MAX_VALUE) => {
  const error = (issue: { input?: unknown }) =>
    `must be a number from ${min}${max >= Number.MAX_VALUE ? '' : ` to ${max}`}, got ${shown(issue.input)}`;
  return z.preprocess(fromEnvNumber, z.number({ error }).min(min, { error }).max(max, { error }));
};
const bool = () => z.preprocess(fromEnvBoolean, z.boolean({ error: (issue) => `must be true or false, got ${shown(issue.input)}` }));

const redisSchema = z.strictObject({
  /** @defaultValue redis://127.0.0.1:6379 */
  url: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379'),
  /** Seed nodes of a Redis Cluster (host:port); when set, `url` is ignored. */
  clusterNodes: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).optional(),
  /** Key prefix; the queue adds a `{...}` hash tag per controller so Redis Cluster keeps a queue on one slot. */
  prefix: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and dashes')
    .default('conveyor'),
});

const kubeSchema = z.strictObject({
  /** Path of a kubeconfig file; KUBECONFIG fills it when unset. */
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  /** Explicit API server URL; needs `token` or `tokenFile`. */
  server: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  token: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
  /** Use the pod's service account. */
  inCluster: bool().default(false),
  /** With `server`: the CA that signed the API server's certificate, a PEM file (pinned instead of the system's CAs). */
  caFile: z.string().min(1).optional(),
  /** With `server`: the same CA inline, base64 of the PEM as in a kubeconfig's certificate-authority-data; empty means none. */
  caData: z.string().optional(),
  /** Accept any certificate: a last resort, since whoever sits between you and the API server then gets the token. */
  insecureSkipTlsVerify: bool().default(false),
});

const backoffSchema = z.strictObject({
  /** First retry delay. @defaultValue 200ms */
  base: duration().default(200),
  /** Longest retry delay. @defaultValue 1000s */
  max: duration().default(1_000_000),
  /** Share of each delay that is randomised, 0 to 1. @defaultValue 0.2 */
  jitter: num(0, 1).default(0.2),
});

const queueSchema = z.strictObject({
  /** Attempts before a request is parked. @defaultValue 15 */
  attempts: int(1, 1_000).default(15),
  backoff: backoffSchema.prefault({}),
  /** Queue-wide rate limit: at most `max` reconciles started per `duration`. */
  limiter: z.strictObject({ max: int(1), duration: duration() }).optional(),
  /** How long a worker's lock on a job lasts before another worker may take it. @defaultValue 30s */
  lockDuration: duration().default(30_000),
  /** How often workers look for jobs whose lock expired. @defaultValue 30s */
  stalledInterval: duration().default(30_000),
  /**
   * How long the whole queue pauses after a failure no retry of any request can fix (missing or
   * refused credentials, a function that does not exist, access denied) before one request tries
   * again; no attempt is spent meanwhile. Fix the setup and the next try after the pause succeeds. @defaultValue 30s
   */
  blockedPause: duration().default(30_000),
  /**
   * The share of each worker's slots (container worker or dispatcher) a resync may hold while fresh
   * events or manual requests run there; the rest stay free for them. With nothing else running a
   * resync may use every slot. At least one slot whatever the share (see queue/lanes.ts). @defaultValue 0.5
   */
  resyncShare: num(0.01, 1).default(0.5),
  /**
   * How many BullMQ queues the controller's queue is split into, by a stable hash of the object key;
   * each has its own Redis hash tag, so a Redis Cluster spreads them over its nodes. 1 keeps the
   * unpartitioned layout. Change it only on an empty queue: a process whose value differs from the
   * queue's in Redis refuses to start while that queue holds requests (docs/operating.md). @defaultValue 1
   */
  partitions: int(1, MAX_PARTITIONS).default(1),
});

const workerSchema = z.strictObject({
  /** Reconciles run at once by one worker process. @defaultValue 10 */
  concurrency: int(1, 10_000).default(10),
  /** After SIGTERM, how long running reconciles may take to finish. @defaultValue 30s */
  shutdownGrace: duration().default(30_000),
  reconcileTimeout: duration().default(60_000),
  finalizeTimeout: duration().default(60_000),
});

const apiBudgetSchema = z.strictObject({
  /** Cluster-wide API requests per second shared by every worker. @defaultValue 50 */
  qps: num(0.1).default(50),
  /** Requests allowed in a burst above `qps`. @defaultValue 100 */
  burst: int(1).default(100),
});

const watcherSchema = z.strictObject({
  /** Items per list page. @defaultValue 500 */
  pageSize: int(1, 10_000).default(500),
  /** Server-side timeout of each watch request; the watcher reconnects after it. @defaultValue 5m */
  watchTimeout: duration().default(300_000),
  /** Expected bookmark interval; a watch silent for twice this long is restarted. @defaultValue 60s */
  bookmarkInterval: duration().default(60_000),
  /** Every key is enqueued again once per period, spread over it. @defaultValue 10h */
  resyncPeriod: duration().default(36_000_000),
  /** Longest pause between reconnect attempts. @defaultValue 30s */
  maxBackoff: duration().default(30_000),
  /**
   * This replica's shard, as "index/count" (0-based), or "ordinal/count" to take the index from a
   * StatefulSet pod's host name (`conveyor-watcher-2` → 2); omitted for all keys.
   */
  shard: z
    .string()
    .regex(/^(\d+|ordinal)\/[1-9]\d*$/, 'must be index/count, such as 0/3, or ordinal/count')
    .refine((s) => s.startsWith('ordinal/') || Number(s.split('/')[0]) < Number(s.split('/')[1]), 'index must be below count')
    .optional(),
  /**
   * Drop the watch events of writes this controller's own workers made (child applies, finalizer and
   * status writes), so a reconcile does not wake its controller again; false enqueues them like
   * anyone else's. @defaultValue true
   */
  ignoreOwnWrites: bool().default(true),
  leaderElect: bool().default(false),
  leaseDuration: duration().default(15_000),
  /**
   * After SIGTERM, how long the watcher may take to enqueue what it buffered, save its cursor and
   * release its Lease before it exits anyway (the next start re-enqueues what was left). @defaultValue 10s
   */
  shutdownGrace: duration().default(10_000),
  leaseNamespace: z.string().min(1).default('default'),
});

const autoscalerSchema = z
  .strictObject({
    /** Run the autoscaler in the watcher process. @defaultValue false */
    enabled: bool().default(false),
    /** What it sizes: a Deployment's `scale` subresource (container workers) or the Lambda dispatcher's concurrency. */
    target: z.enum(['deployment', 'dispatcher']).default('deployment'),
    /** The worker Deployment as namespace/name. @defaultValue conveyor-system/conveyor-worker */
    deployment: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/, 'must be namespace/name')
      .default('conveyor-system/conveyor-worker'),
    minWorkers: int(0).default(1),
    maxWorkers: int(1).default(20),
    /** The longest a request should wait in the queue; workers = backlog × duration / (target × concurrency). @defaultValue 30s */
    latencyTarget: duration().default(30_000),
    /** How often depth is read and a decision made. @defaultValue 15s */
    interval: duration().default(15_000),
    /** A scale-down waits until no higher recommendation was made within this window. @defaultValue 5m */
    scaleDownStabilization: duration().default(300_000),
    /** Scale to zero after this long with nothing waiting or running; unset keeps minWorkers. */
    idleToZero: duration().optional(),
    /** Reconcile duration assumed before any was measured. @defaultValue 1s */
    defaultReconcile: duration().default(1_000),
    /** API requests one reconcile makes, to cap workers at what the API budget can feed. @defaultValue 3 */
    apiCallsPerReconcile: num(0.1).default(3),
  })
  .refine((a) => a.minWorkers <= a.maxWorkers, { message: 'minWorkers must not exceed maxWorkers', path: ['minWorkers'] });

const lambdaSchema = z.strictObject({
  /** The reconcile function's name or ARN (`conveyor dispatch --function` overrides it). */
  functionName: z.string().min(1).optional(),
  /** @defaultValue us-east-1 */
  region: z.string().min(1).default('us-east-1'),
  /** Another Lambda endpoint, such as serverless-offline's http://127.0.0.1:3002. */
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  /** The function's configured timeout (serverless.yml `timeout`); the dispatcher waits this plus a margin. @defaultValue 60s */
  functionTimeout: duration().default(60_000),
});

const apiSchema = z.strictObject({
  /** YAML file of `{ tokens: [{ user, sha256, namespaces? }] }` for POST /v1/reconcile (tokens stored as SHA-256 hashes). */
  tokenFile: z.string().min(1).optional(),
  /** Also accept the cluster's own tokens: TokenReview, then SubjectAccessReview (verb `update` on the object). @defaultValue false */
  tokenReview: bool().default(false),
  /** Largest request body accepted; larger ones get 413. @defaultValue 65536 */
  maxBodyBytes: int(1, 16 * 1024 * 1024).default(64 * 1024),
  /** Most objects in one request. @defaultValue 1000 */
  maxObjects: int(1, 100_000).default(1_000),
  /**
   * How long a request may wait for TokenReview, SubjectAccessReview and the queue; past it, the
   * caller gets 503 with Retry-After. @defaultValue 5s
   */
  timeout: duration().default(5_000),
});

/** How traces are sampled: the values of OTEL_TRACES_SAMPLER that Conveyor's SDK set-up honours. */
export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

/**
 * Tracing, set from the standard OpenTelemetry variables rather than a file (see `otelSettings`): it is on
 * when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names a collector, unless
 * OTEL_TRACES_EXPORTER is `none` or OTEL_SDK_DISABLED is `true`. The exporter reads its endpoint and
 * headers from those variables itself.
 */
const tracingSchema = z.strictObject({
  /** Export traces by OTLP (HTTP, JSON bodies). @defaultValue false */
  enabled: bool().default(false),
  /** OTEL_SERVICE_NAME. @defaultValue conveyor-<process>: conveyor-watcher, conveyor-worker, conveyor-dispatcher, conveyor-lambda */
  serviceName: z.string().min(1).optional(),
  /** OTEL_TRACES_SAMPLER. @defaultValue parentbased_always_on */
  sampler: z.enum(TRACE_SAMPLERS).default('parentbased_always_on'),
  /** OTEL_TRACES_SAMPLER_ARG: the share of traces kept by the traceidratio samplers. @defaultValue 1 */
  samplerRatio: num(0, 1).default(1),
});

const cliSchema = z.strictObject({
  /**
   * How long a one-shot command (`enqueue`, `status`, `parked`) waits, in all, for Redis and the API server
   * before it gives up with one line naming the one that did not answer, and exit code 1. @defaultValue 10s
   */
  timeout: duration().default(10_000),
});

const controllerSchema = z.strictObject({
  /**
   * The controller's share of each worker process's slots (`worker.concurrency`, split in proportion to the shares,
   * at least one slot each) and of each dispatcher's. @defaultValue 1
   */
  share: num(0.01, 1_000).default(1),
});

const httpSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: int(0, 65_535).default(8080),
});

export const configSchema = z.strictObject({
  /**
   * Path of the controller module (its default export is a defineController result, or an array of them), or a
   * list of such paths: one watcher, worker, dispatcher and Lambda function then serve every controller they hold.
   */
  controller: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Settings of one controller among several in a process, by controller name (see controller-set.ts). */
  controllers: z.record(z.string(), controllerSchema).default({}),
  redis: redisSchema.prefault({}),
  kube: kubeSchema.prefault({}),
  queue: queueSchema.prefault({}),
  worker: workerSchema.prefault({}),
  apiBudget: apiBudgetSchema.prefault({}),
  watcher: watcherSchema.prefault({}),
  http: httpSchema.prefault({}),
  /** The watcher's manual-enqueue API (POST /v1/reconcile); without tokenFile or tokenReview it is not served. */
  api: apiSchema.prefault({}),
  lambda: lambdaSchema.prefault({}),
  autoscaler: autoscalerSchema.prefault({}),
  cli: cliSchema.prefault({}),
  log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).prefault({}),
  tracing: tracingSchema.prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export const ENV_PREFIX = 'CONVEYOR_';

export interface LoadConfigOptions {
  /**
   * Path of a YAML or JSON file, or of a directory whose `*.yaml`, `*.yml` and `*.json` files (hidden ones aside)
   * are merged in name order, later files overriding earlier ones key by key (a mounted ConfigMap of a base
   * `conveyor.yaml` and an overlay's `overlay.yaml`).
   */
  file?: string | undefined;
  /** Environment to read overrides from. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Values that win over file and environment (CLI flags). */
  overrides?: Record<string, unknown>;
  /**
   * Also report files the configuration names that do not exist or cannot be read (the controller
   * module, the kubeconfig, token files), with the rest of the problems. @defaultValue false
   */
  checkFiles?: boolean;
}

/** The settings that name a file, checked by `checkFiles`. */
const FILE_SETTINGS = ['controller', 'kube.kubeconfig', 'kube.tokenFile', 'kube.caFile', 'api.tokenFile'] as const;

/**
 * Loads configuration: file, then environment (`CONVEYOR_QUEUE__BACKOFF__BASE=1s` sets
 * `queue.backoff.base`; `KUBECONFIG` sets `kube.kubeconfig`), then overrides. Throws one
 * ConfigError listing every problem with its path and source.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const sources = new Map<string, string>();
  let tree: Record<string, unknown> = {};

  if (options.file !== undefined) {
    // Later files win key by key: a kustomize overlay adds its settings beside the base's file instead of replacing it.
    for (const file of configFiles(options.file)) {
      const parsed = readConfigFile(file);
      markSources(parsed, [], file, sources);
      tree = mergeTrees(tree, parsed);
    }
  }

  if (env.KUBECONFIG && env.KUBECONFIG !== '') {
    setPath(tree, ['kube', 'kubeconfig'], env.KUBECONFIG.split(':')[0]);
    sources.set('kube.kubeconfig', 'KUBECONFIG');
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .map((part) => envPartToKey(part));
    if (path.some((p) => p === '')) {
      problems.push({ path: '', message: 'malformed variable name; use CONVEYOR_SECTION__KEY', source: name });
      continue;
    }
    const asList = value.includes(',') && path.at(-1) === 'clusterNodes';
    setPath(tree, path, asList ? value.split(',').map((s) => s.trim()) : value);
    sources.set(path.join('.'), name);
  }
  for (const [path, [value, name]] of Object.entries(otelSettings(env, problems))) {
    setPath(tree, path.split('.'), value);
    sources.set(path, name);
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(tree, path.split('.'), value);
    sources.set(path, 'command line');
  }

  const result = configSchema.safeParse(tree);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const base = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const path = [...base, key].join('.');
          const near = closest(key, knownKeys(base.map(String)));
          problems.push(
            withSource(
              { path, message: `unknown setting${near === undefined ? '' : `; did you mean ${[...base, near].join('.')}?`}` },
              path,
              sources,
            ),
          );
        }
        continue;
      }
      const path = base.join('.');
      problems.push(withSource({ path, message: issue.message }, path, sources));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = (result as { data: Config }).data;
  problems.push(...kubeProblems(config.kube).map((problem) => withSource(problem, problem.path, sources)));
  if (options.checkFiles === true) problems.push(...missingFiles(config, sources));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The `tracing` settings the standard OpenTelemetry variables give, each with the variable it came from.
 * Only OTLP over HTTP with JSON bodies is built in: another exporter or protocol is a problem to report, not
 * something to ignore silently.
 */
function otelSettings(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): Record<string, [unknown, string]> {
  const get = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const settings: Record<string, [unknown, string]> = {};
  const endpoint =
    get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
  const exporter = get('OTEL_TRACES_EXPORTER');
  const off = get('OTEL_SDK_DISABLED') === 'true' || exporter === 'none';
  if (!off && (get(endpoint) !== undefined || exporter === 'otlp'))
    settings['tracing.enabled'] = [true, exporter === 'otlp' ? 'OTEL_TRACES_EXPORTER' : endpoint];
  if (exporter !== undefined && exporter !== 'otlp' && exporter !== 'none') {
    problems.push({ path: 'tracing', message: 'Conveyor exports traces by otlp only (or none)', source: 'OTEL_TRACES_EXPORTER' });
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = get(name);
    if (settings['tracing.enabled'] !== undefined && protocol !== undefined && protocol !== 'http/json') {
      problems.push({
        path: 'tracing',
        message: `Conveyor sends OTLP over HTTP with JSON bodies: set http/json, not ${protocol}`,
        source: name,
      });
    }
  }
  const service = get('OTEL_SERVICE_NAME');
  if (service !== undefined) settings['tracing.serviceName'] = [service, 'OTEL_SERVICE_NAME'];
  const sampler = get('OTEL_TRACES_SAMPLER');
  if (sampler !== undefined) settings['tracing.sampler'] = [sampler, 'OTEL_TRACES_SAMPLER'];
  const ratio = get('OTEL_TRACES_SAMPLER_ARG');
  if (ratio !== undefined) settings['tracing.samplerRatio'] = [ratio, 'OTEL_TRACES_SAMPLER_ARG'];
  return settings;
}

/** Settings of `kube` that are each valid but do not go together. */
function kubeProblems(kube: Config['kube']): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (kube.server !== undefined && kube.token === undefined && kube.tokenFile === undefined) {
    problems.push({ path: 'kube.server', message: 'needs kube.token or kube.tokenFile to authenticate' });
  }
  const ca = kube.caFile !== undefined ? 'kube.caFile' : kube.caData !== undefined && kube.caData !== '' ? 'kube.caData' : undefined;
  if (ca === undefined) return problems;
  if (kube.caFile !== undefined && kube.caData !== undefined && kube.caData !== '') {
    problems.push({ path: 'kube.caData', message: 'set kube.caFile or kube.caData, not both' });
  }
  if (kube.server === undefined) {
    problems.push({ path: ca, message: 'applies to kube.server only; a kubeconfig or the pod names its own certificate authority' });
  }
  if (kube.insecureSkipTlsVerify) {
    problems.push({ path: ca, message: 'cannot be combined with kube.insecureSkipTlsVerify, which would ignore it' });
  }
  return problems;
}

/** The files a `--config` path stands for: itself, or a directory's configuration files in name order. */
function configFiles(path: string): string[] {
  let directory: boolean;
  try {
    directory = statSync(path).isDirectory();
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot read config file: ${errorMessage(error)}`, source: path }]);
  }
  if (!directory) return [path];
  const files = readdirSync(path)
    .filter((name) => !name.startsWith('.') && /\.(ya?ml|json)$/.test(name))
    .sort()
    .map((name) => join(path, name));
  if (files.length === 0) throw new ConfigError([{ path: '', message: 'the directory holds no .yaml, .yml or .json file', source: path }]);
  return files;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot read config file: ${errorMessage(error)}`, source: file }]);
  }
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? undefined : parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new ConfigError([{ path: '', message: `not valid YAML or JSON: ${errorMessage(error)}`, source: file }]);
  }
  // An empty file (or one of comments) is most likely the wrong file: say so rather than run on defaults.
  if (parsed === undefined || parsed === null) {
    throw new ConfigError([
      {
        path: '',
        message: 'holds no settings; give at least one (redis, queue, worker, …), or leave out --config for the defaults',
        source: file,
      },
    ]);
  }
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([{ path: '', message: 'must be a mapping of sections (redis, queue, worker, …)', source: file }]);
  }
  return parsed as Record<string, unknown>;
}

/** `over` merged into `base`: mappings merge key by key, anything else (lists too) replaces. */
function mergeTrees(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const previous = merged[key];
    const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
    merged[key] = isMapping(previous) && isMapping(value) ? mergeTrees(previous, value) : value;
  }
  return merged;
}

const REDACTED = '[redacted]';

/** A URL with its password (and a user name standing alone, which Redis takes as a password) replaced. */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.password === '' && url.username === '') return text;
  if (url.password !== '') url.password = REDACTED;
  else url.username = REDACTED;
  return url.toString().replace(encodeURIComponent(REDACTED), REDACTED);
}

/** Settings that hold a secret outright: replaced whole. */
const SECRET_KEYS = new Set(['token', 'password', 'secret', 'secretAccessKey', 'sessionToken']);

/**
 * The configuration as text for people: every secret replaced — tokens and passwords, and the
 * password inside any URL (`redis://:[redacted]@host:6379`).
 */
export function redactConfig(config: Config): Config {
  return redactTree(config) as Config;
}

function redactTree(node: unknown, key = ''): unknown {
  if (typeof node === 'string') return SECRET_KEYS.has(key) ? REDACTED : /^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? redactUrl(node) : node;
  if (Array.isArray(node)) return node.map((item) => redactTree(item));
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, redactTree(v, k)]));
}

function envPartToKey(part: string): string {
  // QUEUE -> queue, LOCK_DURATION -> lockDuration, API_BUDGET -> apiBudget
  return part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function setPath(tree: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path.at(-1);
  if (last !== undefined) node[last] = value;
}

function markSources(node: unknown, path: string[], source: string, sources: Map<string, string>): void {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    sources.set(path.join('.'), source);
    return;
  }
  for (const [key, value] of Object.entries(node)) markSources(value, [...path, key], source, sources);
}

/** The problem with where its value came from: the setting's own source, or (for an unknown section) that of a setting under it. */
function withSource(problem: ConfigProblem, path: string, sources: Map<string, string>): ConfigProblem {
  let source = sources.get(path);
  if (source === undefined) {
    const below = [...sources.entries()].filter(([p]) => p.startsWith(`${path}.`)).map(([, s]) => s);
    if (below.length > 0) source = [...new Set(below)].join(', ');
  }
  return source === undefined ? problem : { ...problem, source };
}

/** A problem for each file the configuration names that cannot be read, with where the name came from. */
function missingFiles(config: Config, sources: Map<string, string>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const path of FILE_SETTINGS) {
    const value = path.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config);
    const files = typeof value === 'string' ? [value] : Array.isArray(value) ? (value as string[]) : [];
    for (const [index, file] of files.entries()) {
      const at = typeof value === 'string' ? path : `${path}.${index}`;
      try {
        accessSync(file, constants.R_OK);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${errorMessage(error)})`;
        problems.push(withSource({ path: at, message: `file ${file} ${why}` }, path, sources));
      }
    }
  }
  return problems;
}

/** The settings the schema knows under `path` (the sections at the root). */
function knownKeys(path: readonly string[]): string[] {
  let node: unknown = configSchema;
  for (const part of path) node = shapeOf(node)[part];
  return Object.keys(shapeOf(node));
}

/** An object schema's shape, under its prefault/default/optional/refine wrappers; empty for anything else. */
function shapeOf(schema: unknown): Record<string, unknown> {
  let node = schema;
  for (let depth = 0; depth < 5; depth += 1) {
    const def = (node as { _zod?: { def?: { innerType?: unknown; in?: unknown } } } | undefined)?._zod?.def;
    const next = def?.innerType ?? def?.in;
    if (next === undefined) break;
    node = next;
  }
  return (node as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
}
