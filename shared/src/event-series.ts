// Event series in Redis: every worker counts the occurrences of an Event in one place, so a repeated Event is one object with a growing count whichever worker (or Lambda) saw it.
//
// client-go's events recorder keeps its series in the memory of one process; Conveyor's reconciles of one
// object run on any worker, so the count lives in Redis, next to the spam filter that limits how often one
// object's Events are written (client-go's EventSourceObjectSpamFilter: a bucket of 25, one token per 5 minutes).
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { type Clock, systemClock } from './clock.ts';
import { NOTE_EVENT_LUA } from './lua/event-series.ts';
import { type ControllerKeys, controllerKeys } from './queue/redis-keys.ts';

/** A series ends this long after its last occurrence; the next one starts a new Event (client-go's finishTime). */
export const EVENT_SERIES_TTL_MS = 6 * 60_000;
/** Events one object may write at once, and how fast the allowance comes back (client-go's spam filter defaults). */
export const EVENT_SPAM_BURST = 25;
export const EVENT_SPAM_REFILL_MS = 5 * 60_000;

/** What makes two Events the same series: the object (by uid), type, reason, action and note. */
export interface EventIdentity {
  uid: string;
  type: string;
  reason: string;
  action: string;
  note: string;
}

/** One occurrence, counted: how many so far, the Event's name, and whether the spam filter lets it be written now. */
export interface NotedEvent {
  count: number;
  name: string;
  write: boolean;
}

export interface EventSeriesStore {
  note(identity: EventIdentity, candidateName: string): Promise<NotedEvent>;
}

const NOTE = 'conveyorNoteEvent';
type WithScript = { [NOTE]: (k1: string, k2: string, ...args: (string | number)[]) => Promise<[number, string, number]> };

const hex16 = (text: string) => createHash('sha1').update(text).digest('hex').slice(0, 16);

/** Series and spam filters of one controller's Events, in its Redis hash slot. */
export class RedisEventSeries implements EventSeriesStore {
  private readonly redis: Redis | Cluster;
  private readonly keys: ControllerKeys;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(redis: Redis | Cluster, options: { prefix: string; controller: string; clock?: Pick<Clock, 'now'> }) {
    this.redis = redis;
    this.keys = controllerKeys(options.prefix, options.controller);
    this.clock = options.clock ?? systemClock;
    if (!(NOTE in redis)) redis.defineCommand(NOTE, { numberOfKeys: 2, lua: NOTE_EVENT_LUA });
  }

  async note(identity: EventIdentity, candidateName: string): Promise<NotedEvent> {
    const series = hex16(JSON.stringify([identity.uid, identity.type, identity.reason, identity.action, identity.note]));
    const [count, name, write] = await (this.redis as unknown as WithScript)[NOTE](
      this.keys.eventSeries(series),
      this.keys.eventSpam(hex16(identity.uid)),
      candidateName,
      Math.floor(this.clock.now()),
      EVENT_SERIES_TTL_MS,
      EVENT_SPAM_BURST,
      EVENT_SPAM_REFILL_MS,
    );
    return { count: Number(count), name: String(name), write: Number(write) === 1 };
  }
}
