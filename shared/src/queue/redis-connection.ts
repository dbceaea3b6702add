// The one factory of Redis connections (single server or Cluster), with the logging and error handling every connection needs; and a scan of job ids.
//
// Expected flow: `createRedisConnection` returns an ioredis client that reconnects on its own with
// a capped backoff. While Redis is unreachable it logs one `warn` line saying what (the connection's
// purpose), where (the address, password redacted), the error and when it tries next — the first
// failure at once, then at most one line per RECONNECT_MAX_MS — and one `info` line when Redis is
// back. It never lets ioredis print its raw "Unhandled error event" stack.
// Guarantees: commands wait for a reconnect instead of failing (`maxRetriesPerRequest: null`, what
// BullMQ's blocking connections need), so callers that must not wait forever bound their own time:
// `waitForRedis` before the first command, `closeRedisConnection` to stop without waiting for Redis.
import { Cluster, Redis } from 'ioredis';
import { settleWithin } from '../clock.ts';
import { type Config, redactUrl } from '../config.ts';
import { errorMessage, UnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export type RedisConnection = Redis | Cluster;

export interface RedisConnectionOptions {
  /** Where connection problems are logged (a silent logger keeps the handling and drops the lines). */
  logger: Logger;
  /** What the connection is for, named in its log lines. @defaultValue `queue` */
  purpose?: string;
}

/** Longest pause between reconnect attempts, and the shortest gap between two "unreachable" lines. */
export const RECONNECT_MAX_MS = 5_000;

/** 100 ms, 200 ms, 400 ms … capped at RECONNECT_MAX_MS: a restart is noticed quickly, an outage costs little. */
export function reconnectDelay(attempt: number): number {
  return Math.min(RECONNECT_MAX_MS, 100 * 2 ** Math.min(Math.max(0, attempt - 1), 16));
}

/** What a connection knows about its own health, for `waitForRedis` and error reports from BullMQ. */
interface Health {
  endpoint: string;
  purpose: string;
  logger: Logger;
  lastError: unknown;
  /** When Redis became unreachable (ms since the epoch); undefined while it is reachable. */
  downSince: number | undefined;
  attempts: number;
  lastLineAt: number;
}

const health = new WeakMap<RedisConnection, Health>();

/**
 * An ioredis client for the configured Redis: a Cluster client when `clusterNodes` is set,
 * otherwise a single-server client for `url`, with Conveyor's reconnect schedule and logging.
 */
export function createRedisConnection(redis: Config['redis'], options: RedisConnectionOptions): RedisConnection {
  const retryStrategy = (times: number) => reconnectDelay(times);
  // ioredis waits this long for a dropped socket to close; its default of 2 s keeps a process that
  // gave up on an unreachable Redis alive for those 2 s after it is done.
  const disconnectTimeout = 200;
  let connection: RedisConnection;
  if (redis.clusterNodes !== undefined && redis.clusterNodes.length > 0) {
    const nodes = redis.clusterNodes.map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
    });
    connection = new Cluster(nodes, {
      redisOptions: { maxRetriesPerRequest: null, disconnectTimeout },
      clusterRetryStrategy: retryStrategy,
      enableReadyCheck: true,
    });
  } else {
    connection = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy, disconnectTimeout });
  }
  const state: Health = {
    endpoint: redisEndpoint(redis),
    purpose: options.purpose ?? 'queue',
    logger: options.logger,
    lastError: undefined,
    downSince: undefined,
    attempts: 0,
    lastLineAt: 0,
  };
  health.set(connection, state);
  connection.on('error', (error: unknown) => {
    state.lastError = error;
  });
  connection.on('node error', (error: unknown) => {
    state.lastError = error;
  });
  connection.on('reconnecting', (delay: unknown) => failed(state, state.lastError, typeof delay === 'number' ? delay : undefined));
  connection.on('ready', () => restored(state));
  return connection;
}

/** Where a connection goes, for people: the URL with its password redacted, or the Cluster's seed nodes. */
export function redisEndpoint(redis: Config['redis']): string {
  if (redis.clusterNodes !== undefined && redis.clusterNodes.length > 0) return `Redis Cluster ${redis.clusterNodes.join(',')}`;
  return `Redis at ${redactUrl(redis.url)}`;
}

/**
 * Reports an error that BullMQ raised for `connection` (its Queue and Worker re-emit their
 * connections' errors, including the blocking connection it duplicates from ours). Connection
 * errors join the connection's outage lines; anything else is logged as it is. Returns nothing.
 */
export function reportRedisError(connection: RedisConnection, error: unknown, logger: Logger, what: string): void {
  const state = health.get(connection);
  if (state !== undefined && isConnectionError(error)) {
    // While the connection itself is down it reports the outage (with its next attempt); a lone
    // failure of BullMQ's blocking duplicate, with ours still up, is reported here.
    state.lastError = error;
    const now = Date.now();
    if (connection.status === 'ready' && now - state.lastLineAt >= RECONNECT_MAX_MS) {
      state.lastLineAt = now;
      state.logger.warn(
        { redis: state.endpoint, purpose: state.purpose, err: errorMessage(error) },
        'Redis connection error; reconnecting',
      );
    }
    return;
  }
  logger.warn({ err: errorMessage(error) }, what);
}

export interface WaitForRedisOptions {
  /** Give up after this long. @defaultValue never */
  timeoutMs?: number;
  /** The setting behind `timeoutMs`, named in the error (`cli.timeout`). */
  setting?: string;
  /** Stop waiting (rejecting with its reason) when this aborts. */
  signal?: AbortSignal;
}

/**
 * Resolves once `connection` is ready; rejects with UnavailableError naming the address and the
 * last error after `timeoutMs`, or with the signal's reason when `signal` aborts first.
 */
export async function waitForRedis(connection: RedisConnection, options: WaitForRedisOptions = {}): Promise<void> {
  if (connection.status === 'ready') return;
  const state = health.get(connection);
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const onReady = () => resolve();
  const onAbort = () => reject(options.signal?.reason);
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          const setting = options.setting === undefined ? '' : ` (${options.setting})`;
          const cause = state?.lastError === undefined ? '' : `: ${errorMessage(state.lastError)}`;
          const within = formatMs(options.timeoutMs ?? 0);
          reject(new UnavailableError(`${state?.endpoint ?? 'Redis'} did not answer within ${within}${setting}${cause}`));
        }, options.timeoutMs);
  connection.once('ready', onReady);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  try {
    await promise;
  } finally {
    clearTimeout(timer);
    connection.off('ready', onReady);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Closes a connection without waiting on an unreachable Redis: QUIT (bounded by `timeoutMs`) while
 * it is connected, so replies in flight arrive; otherwise drop it at once. Never rejects.
 */
export async function closeRedisConnection(connection: RedisConnection, timeoutMs = 2_000): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  const quitted = await settleWithin(connection.quit(), timeoutMs);
  if (!quitted) connection.disconnect();
}

/** The members of a sorted set of job ids (such as `failed`) that start with `idPrefix`, by ZSCAN. */
export async function scanJobIds(connection: RedisConnection, setKey: string, idPrefix: string): Promise<string[]> {
  const pattern = `${idPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const ids: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await connection.zscan(setKey, cursor, 'MATCH', pattern, 'COUNT', '1000');
    cursor = next;
    for (let i = 0; i < page.length; i += 2) {
      const id = page[i];
      if (id !== undefined) ids.push(id);
    }
  } while (cursor !== '0');
  return ids;
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** A socket-level failure or ioredis' "Connection is closed": what a reconnect may fix. */
function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  return error.message === 'Connection is closed.' || error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError';
}

function failed(state: Health, error: unknown, nextAttemptInMs: number | undefined): void {
  const now = Date.now();
  if (nextAttemptInMs !== undefined) state.attempts += 1;
  if (state.downSince === undefined) state.downSince = now;
  else if (now - state.lastLineAt < RECONNECT_MAX_MS) return;
  state.lastLineAt = now;
  const code = (error as { code?: unknown } | undefined)?.code;
  state.logger.warn(
    {
      redis: state.endpoint,
      purpose: state.purpose,
      err: error === undefined ? 'connection lost' : errorMessage(error),
      ...(typeof code === 'string' ? { code } : {}),
      attempts: state.attempts,
      downForMs: now - state.downSince,
      ...(nextAttemptInMs === undefined ? {} : { nextAttemptInMs }),
    },
    'Redis unreachable; retrying',
  );
}

function restored(state: Health): void {
  if (state.downSince === undefined) return;
  state.logger.info(
    { redis: state.endpoint, purpose: state.purpose, downForMs: Date.now() - state.downSince, attempts: state.attempts },
    'Redis reachable again',
  );
  state.downSince = undefined;
  state.lastError = undefined;
  state.attempts = 0;
  state.lastLineAt = 0;
}

function formatMs(ms: number): string {
  return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
}
