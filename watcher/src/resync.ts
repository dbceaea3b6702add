// Periodic resync: every key again once per period, spread evenly over it at resync priority, and parked requests retried.
import type { Clock, Logger, ObjectKey } from '@conveyor/shared';
import type { EnqueueBuffer } from './enqueue-buffer.ts';

export interface ResyncOptions {
  periodMs: number;
  /** The keys to resync, read once at the start of each period. */
  keys: () => Iterable<ObjectKey>;
  buffer: EnqueueBuffer;
  /** Moves parked requests back into the queue; resolves to how many. */
  retryParked?: () => Promise<number>;
  clock: Clock;
  logger: Logger;
  /** How often a slice of keys goes out. @defaultValue 1000 */
  tickMs?: number;
}

/**
 * Runs resync periods until `signal` aborts. A period of N keys sends about N × tick / period keys
 * per tick, so fresh events never queue behind the whole key set, and a key is resynced once
 * per period whatever the size.
 */
export async function runResync(options: ResyncOptions, signal: AbortSignal): Promise<void> {
  const tickMs = Math.max(1, Math.min(options.tickMs ?? 1_000, options.periodMs));
  while (!signal.aborted) {
    const started = options.clock.now();
    if (options.retryParked !== undefined) {
      try {
        const retried = await options.retryParked();
        if (retried > 0) options.logger.info({ retried }, 'resync: parked requests moved back to the queue');
      } catch (error) {
        options.logger.warn({ err: error }, 'resync: could not retry parked requests; next period tries again');
      }
    }
    const keys = [...options.keys()];
    let sent = 0;
    while (!signal.aborted) {
      const elapsed = options.clock.now() - started;
      const due = elapsed >= options.periodMs ? keys.length : Math.floor((keys.length * (elapsed + tickMs)) / options.periodMs);
      for (; sent < Math.min(due, keys.length); sent++) options.buffer.add({ key: keys[sent] as ObjectKey, reason: 'resync' });
      if (elapsed >= options.periodMs) break;
      await options.clock.sleep(Math.min(tickMs, options.periodMs - elapsed), signal);
    }
    if (!signal.aborted) options.logger.info({ keys: keys.length }, 'resync period complete');
  }
}
