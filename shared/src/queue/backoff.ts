// Per-key exponential backoff for failed reconciles: base doubling per attempt, capped, with jitter.
import type { Config } from '../config.ts';

export type BackoffSettings = Config['queue']['backoff'];

/**
 * The delay before retry number `attempt` (1 for the first retry): `base × 2^(attempt-1)`, capped at
 * `max`, then reduced by up to `jitter` of itself so that keys that failed together do not retry
 * together. With the defaults: 200 ms, 400 ms, 800 ms, … 1000 s.
 *
 * `random` is injected so tests read plain tables; it returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, settings: BackoffSettings, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`backoff attempt must be a positive integer, got ${attempt}`);
  // 2^(attempt-1) overflows to Infinity for large attempts; min() then yields max, which is what we want.
  const ceiling = Math.min(settings.max, settings.base * 2 ** (attempt - 1));
  return Math.round(ceiling * (1 - settings.jitter * random()));
}
