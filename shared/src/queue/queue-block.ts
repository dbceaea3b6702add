// The queue-wide pause for a failure no retry can fix (missing credentials, a function that does not exist, access denied): why it is paused, in Redis for `conveyor status`, in the log once, and over after a success.
//
// Expected flow: a request ends `blocked` → `block()` pauses the queue for `queue.blockedPause`
// (BullMQ's rateLimit: every worker, every key, no attempt used) and writes `{code, message, since,
// until}` to the controller's `blocked` key, kept a little past the pause. When the pause ends one
// request tries again: still blocked, the pause and the record are renewed; fixed, it succeeds and
// the record is dropped (`cleared()`), or expires soon after the last pause.
// Guarantees: a cause is logged at `error` once when it starts (or changes), not once per request;
// the record outlives the last pause by at most one more pause and a second.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Outcome } from '../outcome.ts';
import type { RedisConnection } from './redis-connection.ts';

/** Why the queue is paused, as `conveyor status` shows it. */
export interface QueueBlockRecord {
  code: string;
  message: string;
  /** When this cause first paused the queue (ms since the epoch). */
  since: number;
  /** When the current pause ends and a request tries again. */
  until: number;
}

export interface QueueBlockDeps {
  connection: RedisConnection;
  /** The controller's `blocked` key (redis-keys.ts). */
  key: string;
  pauseMs: number;
  now(): number;
  /** Pauses the whole queue for `ms` (the worker's rateLimit). */
  rateLimit(ms: number): Promise<void>;
  logger: Logger;
  /** Told when this process sees the queue blocked (true) or a request get past it (false): the metric. */
  onChange?(blocked: boolean): void;
}

export class QueueBlock {
  private readonly d: QueueBlockDeps;
  /** Whether this process blocked the queue since its last success: only then does a success clear the record. */
  private blocked = false;

  constructor(deps: QueueBlockDeps) {
    this.d = deps;
  }

  async block(outcome: Extract<Outcome, { kind: 'blocked' }>): Promise<void> {
    const { connection, key, pauseMs, logger } = this.d;
    const now = this.d.now();
    if (!this.blocked) this.d.onChange?.(true);
    this.blocked = true;
    const previous = parseRecord(await connection.get(key));
    const sameCause = previous !== undefined && previous.code === outcome.code && previous.message === outcome.message;
    const record: QueueBlockRecord = {
      code: outcome.code,
      message: outcome.message,
      since: sameCause ? previous.since : now,
      until: now + pauseMs,
    };
    // Kept past the pause, so the try after it finds the same cause and does not log it again.
    await connection.set(key, JSON.stringify(record), 'PX', pauseMs * 2 + 1_000);
    if (!sameCause) {
      logger.error(
        { code: outcome.code, err: outcome.message, pauseMs },
        `queue paused: no request can succeed until this is fixed (${outcome.code}); a request tries again every ${Math.round(pauseMs / 1_000)} s, using no attempts`,
      );
    }
    await this.d.rateLimit(pauseMs);
  }

  /** A request got past: the queue is not blocked (any more). Costs Redis nothing unless this process blocked it. */
  cleared(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.d.onChange?.(false);
    this.d.connection.del(this.d.key).then(
      () => this.d.logger.info('queue running again: a request succeeded after the pause'),
      (error: unknown) =>
        this.d.logger.warn({ err: errorMessage(error) }, 'could not clear the queue’s blocked note; it expires with the pause'),
    );
  }
}

/** The queue's block, if it is paused now for a failure no retry can fix. */
export async function readQueueBlock(connection: RedisConnection, key: string): Promise<QueueBlockRecord | undefined> {
  return parseRecord(await connection.get(key));
}

function parseRecord(text: string | null): QueueBlockRecord | undefined {
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<QueueBlockRecord>;
    if (typeof value.code !== 'string' || typeof value.message !== 'string') return undefined;
    return { code: value.code, message: value.message, since: Number(value.since), until: Number(value.until) };
  } catch {
    return undefined;
  }
}
