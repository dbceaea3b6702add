// Own-write records in Redis: the workers note the resourceVersion each of their writes produced, the watcher asks which watch events are those writes.
//
// Why resourceVersions: every write answers with the object's new resourceVersion, and the watch event
// of that write carries the same one; a write by anyone else, even one that lands between ours and
// our event, gets another. So "this event's resourceVersion is one our write produced" identifies our
// own write exactly, with no guess about time or content. (metadata.managedFields cannot: it says who
// owns which fields and, to the second, when a manager last changed them, not who made this change.)
//
// Expected flow: a worker marks the object's hash "write in flight" (p + 1) just before a write goes
// out, and when it answered records the resourceVersion in a ring of the last few and ends the mark,
// in one script. The watcher asks for a batch of events at once: own (drop), in flight (ask again
// shortly: the worker has not recorded yet), or neither (enqueue).
//
// Guarantees: a record is made only while the run that made the write still holds its job's lock
// (its fence), so the write of a stale run — one whose lock expired and whose key another worker may
// be reconciling — is never hidden: its event wakes the controller as anyone else's would. (With
// `queue.partitions` > 1 the lock is read just before the record instead of inside its script.)
//
// Errors: every failure (Redis away, a record lost to its TTL or pushed out of the ring, an answer the
// watcher sees before the record) makes the watcher treat the event as someone else's: one reconcile
// more, never one less.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { WriteObserver, WriteTarget } from './kube/types.ts';
import { CHECK_OWN_WRITES_LUA, RECORD_OWN_WRITE_LUA } from './lua/own-writes.ts';
import { jobLockKey } from './queue/bullmq-internals.ts';
import { type ControllerKeys, controllerKeys } from './queue/redis-keys.ts';

/** How long an object's records live after its last write: far longer than a watch event takes to arrive. */
export const OWN_WRITE_TTL_MS = 60_000;
/** The last this many resourceVersions of an object are kept; a reconcile writes one object a few times at most. */
export const OWN_WRITE_SLOTS = 8;

/** The queue lock of the run that makes the writes: its job id and lock token. */
export interface RunFence {
  jobId: string;
  token: string;
}

/** What the watcher learns of one event: our write, someone else's, or unknown yet because a write of ours to it is in flight. */
export type OwnWriteVerdict = 'own' | 'foreign' | 'in-flight';

/** The object id in own-write key names: 16 hex digits of SHA-1 over `group/plural/namespace/name` (names may hold `:`). */
export function ownWriteId(target: WriteTarget): string {
  return createHash('sha1').update(`${target.group}/${target.plural}/${target.namespace}/${target.name}`).digest('hex').slice(0, 16);
}

const RECORD = 'conveyorRecordOwnWrite';
const CHECK = 'conveyorCheckOwnWrites';

type Scripts = {
  [RECORD]: (...args: (string | number)[]) => Promise<number>;
  [CHECK]: (...args: (string | number)[]) => Promise<number[]>;
};

function withScripts(redis: Redis | Cluster): Scripts {
  // Without numberOfKeys, each call passes its key count first: the record takes 1 or 2 keys, the check N.
  if (!(RECORD in redis)) redis.defineCommand(RECORD, { lua: RECORD_OWN_WRITE_LUA });
  if (!(CHECK in redis)) redis.defineCommand(CHECK, { lua: CHECK_OWN_WRITES_LUA });
  return redis as unknown as Scripts;
}

interface OwnWritesOptions {
  /** config.redis.prefix */
  prefix: string;
  controller: string;
  /** config.queue.partitions: where the fence's job lock lives. @defaultValue 1 */
  partitions?: number;
}

/** The workers' side: records the writes of each run. */
export class OwnWriteRecorder {
  private readonly redis: Redis | Cluster;
  private readonly keys: ControllerKeys;

  constructor(redis: Redis | Cluster, options: OwnWritesOptions) {
    this.redis = redis;
    this.keys = controllerKeys(options.prefix, options.controller, options.partitions ?? 1);
    withScripts(redis);
  }

  /**
   * The observer of one run's writes (give it to `KubeApiClient.withWrites`). With a fence, a write is
   * recorded only if the run still holds that job lock when the write answered; without one, always.
   */
  forRun(fence?: RunFence): WriteObserver {
    const inFlight = new Map<string, number>();
    return {
      beforeWrite: async (target) => {
        const key = this.keys.ownWrites(ownWriteId(target));
        await this.redis.multi().hincrby(key, 'p', 1).pexpire(key, OWN_WRITE_TTL_MS).exec();
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      },
      afterWrite: async (target, resourceVersion) => {
        const key = this.keys.ownWrites(ownWriteId(target));
        const marked = (inFlight.get(key) ?? 0) > 0;
        if (marked) inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
        if (!marked && resourceVersion === undefined) return;
        const lock = fence === undefined ? undefined : jobLockKey(this.keys.partitionOf(fence.jobId).queue, fence.jobId);
        // With one partition the lock shares the record's hash slot and the script checks it atomically. A
        // partitioned queue's locks live in other slots (other nodes of a cluster), so the lock is read first:
        // a lock lost between that read and the record (microseconds, against a lock of seconds) hides one event.
        const together = lock !== undefined && this.keys.partitions.length === 1;
        const held = lock === undefined || together || (await this.redis.get(lock)) === fence?.token;
        const keys = together ? [key, lock] : [key];
        await withScripts(this.redis)[RECORD](
          keys.length,
          ...keys,
          held ? (resourceVersion ?? '') : '',
          fence?.token ?? '',
          marked ? '1' : '0',
          OWN_WRITE_TTL_MS,
          OWN_WRITE_SLOTS,
        );
      },
    };
  }
}

/** The watcher's side: which events are own writes. */
export class OwnWriteLookup {
  private readonly redis: Redis | Cluster;
  private readonly keys: ControllerKeys;

  constructor(redis: Redis | Cluster, options: OwnWritesOptions) {
    this.redis = redis;
    this.keys = controllerKeys(options.prefix, options.controller);
    withScripts(redis);
  }

  /** One verdict per event, in order, in one round trip. */
  async check(events: readonly { id: string; resourceVersion: string }[]): Promise<OwnWriteVerdict[]> {
    if (events.length === 0) return [];
    const keys = events.map((e) => this.keys.ownWrites(e.id));
    const answers = await withScripts(this.redis)[CHECK](keys.length, ...keys, ...events.map((e) => e.resourceVersion), OWN_WRITE_SLOTS);
    return answers.map((a) => (a === 1 ? 'own' : a === 2 ? 'in-flight' : 'foreign'));
  }
}
