// Capped exponential backoff with jitter: per key for failed reconciles, per connection for the watcher's reconnects.

export interface BackoffSettings {
  /** The first delay (ms). */
  base: number;
  /** The longest delay (ms). */
  max: number;
  /** Share of the delay taken off at random, from 0 (none) to 1. */
  jitter: number;
}

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

/**
 * A backoff that remembers its attempts: `next()` is the delay before the next try, growing with
 * each call; `reset()` after progress starts again from `base`. Jitter defaults to half, so
 * delays fall in [d/2, d].
 */
export class Backoff {
  private attempt = 0;
  private readonly settings: BackoffSettings;
  private readonly random: () => number;

  constructor(settings: Omit<BackoffSettings, 'jitter'> & { jitter?: number }, random: () => number = Math.random) {
    this.settings = { jitter: 0.5, ...settings };
    this.random = random;
  }

  next(): number {
    this.attempt = Math.min(this.attempt + 1, 31);
    return backoffDelay(this.attempt, this.settings, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}
