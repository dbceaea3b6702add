// How many partitions the queue in Redis has, and the rule for changing it: only while the queue it replaces holds no request.
//
// # Why a recorded layout
// A key's partition is its hash modulo the partition count, so a process configured with another
// count than the one that wrote the queue would look for a key's requests in the wrong partition:
// a watcher would enqueue where no worker takes, a worker would wait where nothing arrives, and
// `conveyor status` would count the wrong queues. The count is therefore recorded in Redis (the
// controller's `partitions` key, redis-keys.ts; missing means 1, the layout every queue had before
// partitions existed) and every process compares its `queue.partitions` with it.
//
// # Expected flow
// - Equal: nothing to do (a missing record is written).
// - Different, and the recorded layout holds no request (waiting, ready, delayed, running or parked):
//   the new count is recorded; nothing can be lost, since there is nothing to move. The first process
//   that starts with the new value does this.
// - Different, and the recorded layout holds requests: refused with a ConfigError naming both counts
//   and the requests left. Moving requests between layouts while old and new workers run would break
//   "one reconcile per key at a time" (a key could wait in both), so the queue is drained instead:
//   stop the watchers, let the workers empty the queue, discard or retry what is parked, then roll
//   out the new value everywhere (docs/operating.md, "Changing queue.partitions").
//
// # Guarantees
// No request is dropped or stranded by a change of the count: a layout is replaced only while empty,
// and a process that already checked is told (by `verifyLayout`) when the record changes under it.
import { ConfigError } from '../errors.ts';
import { BULLMQ_KEY, bullmqKey } from './bullmq-internals.ts';
import type { QueueScripts } from './queue-scripts.ts';
import type { RedisConnection } from './redis-connection.ts';
import { type ControllerKeys, controllerKeys, type PartitionKeys } from './redis-keys.ts';

/** A recorded partition count; 1 when none was recorded (the unpartitioned layout). */
function countOf(value: string | null): number {
  const n = value === null ? 1 : Number(value);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** Requests of every state (waiting, ready, delayed, running, parked) in the given partitions. */
export async function requestsIn(scripts: QueueScripts, partitions: readonly PartitionKeys[]): Promise<number> {
  const types = [BULLMQ_KEY.wait, BULLMQ_KEY.paused, BULLMQ_KEY.prioritized, BULLMQ_KEY.delayed, BULLMQ_KEY.active, BULLMQ_KEY.failed];
  const counts = await Promise.all(
    partitions.map((partition) =>
      scripts.depthCounts(
        types.map((type) => bullmqKey(partition.queue, type)),
        ['0', '0', '0', '0'],
      ),
    ),
  );
  // waiting, prioritized, delayed (due + later + backlog), active, parked
  return counts.reduce((sum, [waiting = 0, prioritized = 0, due = 0, later = 0, active = 0, parked = 0, , , , backlog = 0]) => {
    return sum + waiting + prioritized + due + later + backlog + active + parked;
  }, 0);
}

function mismatch(wanted: number, recorded: number, left: number): ConfigError {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return new ConfigError([
    {
      path: 'queue.partitions',
      message:
        `is ${wanted}, but the queue in Redis is split into ${plural(recorded, 'partition')}` +
        (left > 0 ? ` and still holds ${plural(left, 'request')}` : '') +
        `: change it only on an empty queue (stop the watchers, let the workers drain it, retry or discard parked requests), ` +
        `then start every watcher, worker and dispatcher with the new value (docs/operating.md, "Changing queue.partitions")`,
    },
  ]);
}

/**
 * Makes the recorded layout `keys`' partition count, or refuses (see the header). Resolves when this
 * process may use its layout; rejects with ConfigError when it may not.
 */
export async function claimLayout(
  connection: RedisConnection,
  scripts: QueueScripts,
  redisPrefix: string,
  controller: string,
  keys: ControllerKeys,
): Promise<{ changedFrom?: number }> {
  const wanted = keys.partitions.length;
  const stored = await connection.get(keys.layout);
  const recorded = countOf(stored);
  if (recorded === wanted) {
    if (stored === null) await connection.set(keys.layout, String(wanted), 'NX');
    return {};
  }
  const left = await requestsIn(scripts, controllerKeys(redisPrefix, controller, recorded).partitions);
  if (left > 0) throw mismatch(wanted, recorded, left);
  // Replace the record only if no other process changed it meanwhile (a one-key compare-and-set: WATCH would pin a cluster node).
  const previous = await connection.set(keys.layout, String(wanted), 'GET');
  if (countOf(previous) !== recorded && countOf(previous) !== wanted) {
    // Another process recorded a third count between our read and write: put its record back and refuse.
    await connection.set(keys.layout, previous ?? '1');
    throw mismatch(wanted, countOf(previous), 0);
  }
  return { changedFrom: recorded };
}

/**
 * Rejects with ConfigError when another process recorded another count; resolves false when the record
 * is missing (Redis lost it with its data, or someone deleted it: claim it again), true when it is `keys`'.
 */
export async function verifyLayout(connection: RedisConnection, keys: ControllerKeys): Promise<boolean> {
  const stored = await connection.get(keys.layout);
  if (stored === null) return false;
  if (countOf(stored) !== keys.partitions.length) throw mismatch(keys.partitions.length, countOf(stored), 0);
  return true;
}
