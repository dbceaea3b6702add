// The cluster-wide API budget: one token bucket in Redis that every worker (container or Lambda) draws from before each API call.

import type { Cluster, Redis } from 'ioredis';
import { type Clock, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { TAKE_API_TOKEN_LUA } from './lua/take-api-token.ts';
import { apiBudgetKey } from './queue/redis-keys.ts';

/** What a Kubernetes client asks before each request. */
export interface ApiBudget {
  /** Resolves when one request may be sent; returns how long it waited (ms). */
  take(): Promise<number>;
  /** After a 429: nobody spends a token for `ms`. */
  pause(ms: number): Promise<void>;
}

/** No limit at all: for tests that are not about the budget, and for tools run by hand. */
export const unlimitedBudget: ApiBudget = Object.freeze({
  take: async () => 0,
  pause: async () => {},
});

const SCRIPT = TAKE_API_TOKEN_LUA;
const COMMAND = 'conveyorTakeApiToken';

type WithScript = { [COMMAND]: (key: string, rate: number, burst: number, cost: number, pause: number) => Promise<number> };

export interface RedisApiBudgetOptions {
  redis: Redis | Cluster;
  /** Redis key prefix (config.redis.prefix). */
  prefix: string;
  /** Requests per second for the whole cluster. */
  qps: number;
  /** Requests that may go at once after a quiet spell. */
  burst: number;
  /** How to wait; tests pass a fake. @defaultValue systemClock */
  clock?: Pick<Clock, 'sleep'>;
}

/**
 * A token bucket in Redis shared by every worker. A caller that finds it empty reserves its token
 * and sleeps until the reservation is due, so the rate holds across processes without polling.
 * Redis' clock is used, not the workers'.
 */
export class RedisApiBudget implements ApiBudget {
  private readonly redis: Redis | Cluster;
  private readonly key: string;
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Pick<Clock, 'sleep'>;

  constructor(options: RedisApiBudgetOptions) {
    if (!(options.qps > 0)) throw new RangeError(`apiBudget.qps must be above 0, got ${options.qps}`);
    if (!(options.burst >= 1)) throw new RangeError(`apiBudget.burst must be at least 1, got ${options.burst}`);
    this.redis = options.redis;
    this.key = apiBudgetKey(options.prefix);
    this.qps = options.qps;
    this.burst = Math.floor(options.burst);
    this.clock = options.clock ?? systemClock;
    if (!(COMMAND in this.redis)) this.redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
  }

  static fromConfig(redis: Redis | Cluster, config: Pick<Config, 'apiBudget' | 'redis'>): RedisApiBudget {
    return new RedisApiBudget({ redis, prefix: config.redis.prefix, qps: config.apiBudget.qps, burst: config.apiBudget.burst });
  }

  async take(): Promise<number> {
    let waited = Number(await this.run(1, 0));
    if (waited === 0) return 0;
    await this.clock.sleep(waited);
    // A 429 seen by any worker while we slept pauses everyone, including reservations made before it.
    for (let pause = Number(await this.run(0, 0)); pause > 0; pause = Number(await this.run(0, 0))) {
      await this.clock.sleep(pause);
      waited += pause;
    }
    return waited;
  }

  async pause(ms: number): Promise<void> {
    if (!(ms > 0)) return;
    await this.run(0, Math.ceil(ms));
  }

  private run(cost: number, pause: number): Promise<number> {
    return (this.redis as unknown as WithScript)[COMMAND](this.key, this.qps, this.burst, cost, pause);
  }
}
