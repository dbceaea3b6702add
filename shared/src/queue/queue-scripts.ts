// Conveyor's own Lua scripts over a BullMQ queue's keys (depth, resync backlog adds, priority raise, first-failure notes, pull forward, resync admission, parked counts, unstart), each atomic and run by SHA.
//
// Every BullMQ key type, job field and score formula they use comes from `bullmq-internals.ts`:
// key names arrive as KEYS built there, and field names and score factors are templated into the
// Lua source from its constants, so this file spells none of BullMQ's layout itself.

import type { Job } from 'bullmq';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import {
  BULLMQ_EVENT,
  DEDUPLICATION_KEY_TYPE,
  DEDUPLICATION_NEXT_KEY_TYPE,
  DEFAULT_MAX_EVENTS,
  DELAYED_MARKER_MEMBER,
  DELAYED_SCORE_FACTOR,
  JOB_FIELD,
  jobKey,
  jobLockKey,
  META_MAX_EVENTS_FIELD,
  NEXT_JOB_FIELD,
  OPTS_PRIORITY,
  PRIORITY_SCORE_FACTOR,
  READY_MARKER_MEMBER,
} from './bullmq-internals.ts';
import type { RedisConnection } from './redis-connection.ts';
import type { QueueLocation } from './redis-keys.ts';

/** A Lua string literal (JSON's escapes are Lua's for the plain ASCII names templated here). */
const lua = (text: string): string => JSON.stringify(text);

interface ScriptSpec {
  keys: number;
  lua: string;
}

/**
 * depthCounts-6
 *   KEYS[1] wait  KEYS[2] paused  KEYS[3] prioritized  KEYS[4] delayed  KEYS[5] active  KEYS[6] failed
 *   ARGV[1] lowest delayed score that is not yet due: `delayedScore(now + 1)`
 *   ARGV[2] lowest delayed score of the resync backlog: `delayedScore(now + RESYNC_BACKLOG_BAND_MS)`
 *   ARGV[3] lowest prioritized score of a manual request  ARGV[4] ... of a resync (`prioritizedScore(p, 0)`)
 *   returns { waiting, prioritized, delayedDue, delayedLater, active, parked, event, manual, resyncReady, backlog }
 * The prioritized set's score bands are the lanes; the backlog is the delayed jobs at or past ARGV[2].
 */
const depthCounts: ScriptSpec = {
  keys: 6,
  lua: `
local waiting = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
local prioritized = redis.call('ZCARD', KEYS[3])
local delayedAll = redis.call('ZCARD', KEYS[4])
local delayedDue = redis.call('ZCOUNT', KEYS[4], '-inf', '(' .. ARGV[1])
local backlog = redis.call('ZCOUNT', KEYS[4], ARGV[2], '+inf')
local active = redis.call('LLEN', KEYS[5])
local parked = redis.call('ZCARD', KEYS[6])
local event = redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. ARGV[3])
local manual = redis.call('ZCOUNT', KEYS[3], ARGV[3], '(' .. ARGV[4])
return { waiting, prioritized, delayedDue, delayedAll - delayedDue - backlog, active, parked, event, manual, prioritized - event - manual, backlog }
`,
};

/**
 * admitResync-5: moves resync jobs from the backlog (see lanes.ts) into \`prioritized\`, so workers fetch
 * them, but only as many as the calling worker has room for: fewer when fresh work is ready, and none
 * beyond the resync jobs already ready and not yet fetched. Each is moved as BullMQ's promotion of a due
 * delayed job moves it (\`promoteDelayedJobs.lua\`): scored with its priority and a fresh counter, delay 0.
 *   KEYS[1] delayed  KEYS[2] prioritized  KEYS[3] priority counter (pc)  KEYS[4] marker  KEYS[5] wait
 *   ARGV[1] job key prefix  ARGV[2] lowest delayed score of the backlog  ARGV[3] lowest prioritized score
 *   of a resync  ARGV[4] resync priority  ARGV[5] room while fresh work is ready  ARGV[6] room otherwise
 *   ARGV[7] 1 to set the ready marker when resync jobs are ready (wakes workers blocked waiting for a job)
 *   ARGV[8] resync jobs this worker admitted lately and has not been handed yet: ready here, or on their
 *   way to it (moved to active, not yet started); counted instead of the ready ones when more
 *   returns { admitted, backlog left }
 */
const admitResync: ScriptSpec = {
  keys: 5,
  lua: `
local freshReady = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. ARGV[3]) + redis.call('LLEN', KEYS[5])
local room = tonumber(freshReady > 0 and ARGV[5] or ARGV[6])
local ready = redis.call('ZCOUNT', KEYS[2], ARGV[3], '+inf')
local want = room - math.max(ready, tonumber(ARGV[8] or '0'))
local admitted = 0
local offset = 0
local priority = tonumber(ARGV[4])
while want > admitted do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf', 'LIMIT', offset, want - admitted)
  if #ids == 0 then break end
  for _, jobId in ipairs(ids) do
    local jobKey = ARGV[1] .. jobId
    -- Only resync jobs: a requeue-after as long as the backlog delay stays where it is.
    if tonumber(redis.call('HGET', jobKey, ${lua(JOB_FIELD.priority)}) or '0') == priority then
      redis.call('ZREM', KEYS[1], jobId)
      local counter = redis.call('INCR', KEYS[3])
      redis.call('ZADD', KEYS[2], priority * ${PRIORITY_SCORE_FACTOR} + counter % ${PRIORITY_SCORE_FACTOR}, jobId)
      redis.call('HSET', jobKey, ${lua(JOB_FIELD.delay)}, 0)
      admitted = admitted + 1
    else
      offset = offset + 1
    end
  end
end
-- Also when only earlier admissions are ready: a worker blocked on the marker would otherwise sleep until its block timeout.
if admitted + ready > 0 and ARGV[7] == '1' then redis.call('ZADD', KEYS[4], 0, ${lua(READY_MARKER_MEMBER)}) end
return { admitted, redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf') }
`,
};

/**
 * addToBacklog-4: adds resync requests to the resync backlog (lanes.ts) as BullMQ's \`add\` of a delayed job
 * with deduplication \`{ id }\` adds each (\`addDelayedJob-6.lua\`: \`storeJob\`, \`deduplicateJobWithoutReplace\`
 * with its stale-key recovery, \`getDelayedScore\`, the same events), many in one call, and without setting
 * the delay marker: a backlog job falls due in a year, and admission, not BullMQ's promotion, makes it ready.
 * BullMQ's add costs its caller a Job object, two msgpack encodings and a pipelined script per request, and
 * Redis a script call with two msgpack decodings and a JSON encoding per request; with the marker it also
 * wakes every worker blocked waiting for a job. A resync of 5,000 keys took a producer 250 ms of CPU and
 * Redis 180 ms that way, in a burst beside the watcher's fresh events on the same cores.
 *   KEYS[1] meta  KEYS[2] id  KEYS[3] delayed  KEYS[4] events
 *   ARGV[1] job key prefix  ARGV[2] job name  ARGV[3] timestamp (ms)  ARGV[4] delay (ms)  ARGV[5] priority
 *   ARGV[6..] per request: job id, deduplication id, data (JSON), opts (\`storedJobOptions\`)
 *   returns per request the id of the job that holds its place: its own when added, the waiting, delayed
 *   or running job of its deduplication id when merged
 */
const addToBacklog: ScriptSpec = {
  keys: 4,
  lua: `
local rcall = redis.call
local maxEvents = rcall('HGET', KEYS[1], ${lua(META_MAX_EVENTS_FIELD)})
if not maxEvents then
  maxEvents = ${DEFAULT_MAX_EVENTS}
  rcall('HSET', KEYS[1], ${lua(META_MAX_EVENTS_FIELD)}, maxEvents)
end
local prefix, name, timestamp, delay, priority = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local dueAt = tonumber(timestamp) + tonumber(delay)
local minScore = dueAt * ${DELAYED_SCORE_FACTOR}
local maxScore = (dueAt + 1) * ${DELAYED_SCORE_FACTOR} - 1
local holders = {}
for i = 6, #ARGV, 4 do
  local jobId, deduplicationId = ARGV[i], ARGV[i + 1]
  local jobKey = prefix .. jobId
  local deduplicationKey = prefix .. ${lua(DEDUPLICATION_KEY_TYPE)} .. deduplicationId
  local holder
  rcall('INCR', KEYS[2])
  if rcall('EXISTS', jobKey) == 1 then
    rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEvents, '*', 'event', ${lua(BULLMQ_EVENT.duplicated)}, 'jobId', jobId)
    holder = jobId
  elseif not rcall('SET', deduplicationKey, jobId, 'NX') then
    local current = rcall('GET', deduplicationKey)
    if current and rcall('PTTL', deduplicationKey) == -1 and rcall('EXISTS', prefix .. current) == 0 then
      -- The job that held the place is gone (an outage): the key is stale, and this request takes it.
      rcall('DEL', deduplicationKey)
      rcall('DEL', prefix .. ${lua(DEDUPLICATION_NEXT_KEY_TYPE)} .. deduplicationId)
      rcall('SET', deduplicationKey, jobId)
    else
      rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEvents, '*', 'event', ${lua(BULLMQ_EVENT.deduplicated)}, 'jobId', current,
        'deduplicationId', deduplicationId, 'deduplicatedJobId', jobId)
      holder = current
    end
  end
  if not holder then
    rcall('HMSET', jobKey, ${lua(JOB_FIELD.name)}, name, ${lua(JOB_FIELD.data)}, ARGV[i + 2], ${lua(JOB_FIELD.opts)}, ARGV[i + 3],
      ${lua(JOB_FIELD.timestamp)}, timestamp, ${lua(JOB_FIELD.delay)}, delay, ${lua(JOB_FIELD.priority)}, priority,
      ${lua(JOB_FIELD.deduplicationId)}, deduplicationId)
    rcall('XADD', KEYS[4], '*', 'event', ${lua(BULLMQ_EVENT.added)}, 'jobId', jobId, 'name', name)
    -- After the last job due in the same millisecond (up to 4,096 of them, then they share the last score).
    local last = rcall('ZREVRANGEBYSCORE', KEYS[3], maxScore, minScore, 'WITHSCORES', 'LIMIT', 0, 1)
    rcall('ZADD', KEYS[3], last[2] and math.min(tonumber(last[2]) + 1, maxScore) or minScore, jobId)
    rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEvents, '*', 'event', ${lua(BULLMQ_EVENT.delayed)}, 'jobId', jobId, 'delay', dueAt)
    holder = jobId
  end
  holders[#holders + 1] = holder
end
return holders
`,
};

/**
 * raisePriority-3: a fresh event that merged into a waiting resync job must not wait behind the resync.
 *   KEYS[1] prioritized  KEYS[2] priority counter (pc)  KEYS[3] deduplication key (de:<id>)
 *   ARGV[1] job key prefix (`<prefix>:<name>:`)  ARGV[2] the new, numerically lower priority
 *   returns 1 when the job that holds the key's place got the higher priority, else 0
 * The score is BullMQ's own (`prioritizedScore`), with a fresh counter, so FIFO within a priority holds.
 */
const raisePriority: ScriptSpec = {
  keys: 3,
  lua: `
local jobId = redis.call('GET', KEYS[3])
if not jobId then return 0 end
local jobKey = ARGV[1] .. jobId
local wanted = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', jobKey, ${lua(JOB_FIELD.priority)}) or '0')
if current == 0 or current <= wanted then return 0 end
redis.call('HSET', jobKey, ${lua(JOB_FIELD.priority)}, wanted)
if redis.call('ZSCORE', KEYS[1], jobId) then
  local counter = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], wanted * ${PRIORITY_SCORE_FACTOR} + counter % ${PRIORITY_SCORE_FACTOR}, jobId)
end
return 1
`,
};

/**
 * pullForwardIfDirty-4: a request kept for a key while its reconcile ran (BullMQ's `dn:<id>` next-job
 * hash) is only turned into a job when the job *finishes*. A reconcile that ended in requeue-after
 * or a backoff retry moved the job to delayed instead, so without this the request would wait the
 * whole delay. If the job is delayed and such a request exists, the request is consumed and the
 * delayed job made due now, carrying the request's payload (latest wins): its next run starts after
 * this script, so it observes the request.
 *   KEYS[1] delayed  KEYS[2] marker  KEYS[3] dn:<dedup id>  KEYS[4] job key
 *   ARGV[1] job id  ARGV[2] now (ms)
 *   returns 1 when pulled forward, else 0
 */
const pullForwardIfDirty: ScriptSpec = {
  keys: 4,
  lua: `
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local kept = redis.call('HMGET', KEYS[3], ${lua(NEXT_JOB_FIELD.name)}, ${lua(NEXT_JOB_FIELD.data)}, ${lua(NEXT_JOB_FIELD.opts)})
local nextOpts = kept[3]
redis.call('DEL', KEYS[3])
-- Latest wins, as when the kept request becomes a job of its own: the next run sees its reason, time and trace.
if kept[1] and kept[2] then redis.call('HSET', KEYS[4], ${lua(JOB_FIELD.name)}, kept[1], ${lua(JOB_FIELD.data)}, kept[2]) end
if nextOpts then
  local wanted = tonumber(cjson.decode(nextOpts)[${lua(OPTS_PRIORITY)}] or 0)
  local current = tonumber(redis.call('HGET', KEYS[4], ${lua(JOB_FIELD.priority)}) or '0')
  if wanted > 0 and (current == 0 or wanted < current) then redis.call('HSET', KEYS[4], ${lua(JOB_FIELD.priority)}, wanted) end
end
redis.call('HSET', KEYS[4], ${lua(JOB_FIELD.delay)}, 0)
-- Due now, first among jobs due this millisecond (delayedScore(now, 0)); the marker wakes a blocked worker.
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) * ${DELAYED_SCORE_FACTOR}, ARGV[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then redis.call('ZADD', KEYS[2], tonumber(first[2]) / ${DELAYED_SCORE_FACTOR}, ${lua(DELAYED_MARKER_MEMBER)}) end
return 1
`,
};

/**
 * countParked-1: parked requests by why, for `conveyor_parked_requests{reason}`.
 *   KEYS[1] failed  ARGV[1] job key prefix  ARGV[2..] the error codes no retry can fix (errors.ts)
 *   returns { terminal, exhausted }
 * A job's failed reason starts with the code of its last error (`CODE: message`); a terminal code means it
 * was parked at once, anything else (a retryable code, BullMQ's stalled-job message) that its attempts ran out.
 * Reads one field per parked job: a scrape of ten thousand parked requests costs Redis a few milliseconds.
 */
const countParked: ScriptSpec = {
  keys: 1,
  lua: `
local terminalCodes = {}
for i = 2, #ARGV do terminalCodes[ARGV[i]] = true end
local terminal = 0
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, jobId in ipairs(ids) do
  local reason = redis.call('HGET', ARGV[1] .. jobId, ${lua(JOB_FIELD.failedReason)})
  local code = reason and string.match(reason, '^([%w_]+):')
  if code and terminalCodes[code] then terminal = terminal + 1 end
end
return { terminal, #ids - terminal }
`,
};

/**
 * unstart-2: takes back the start BullMQ counted when it fetched a job that goes back unstarted (handed
 * back to the resync backlog, or fetched in a batch the worker did not take), so that the job's next run
 * counts as its first (`RequestContext.runs`). Only while the caller still holds the job's lock: the job
 * is then active and this fetch's, not already taken again or finished.
 *   KEYS[1] the job hash, KEYS[2] its lock
 *   ARGV[1] the lock token
 * Returns 1 if it took one back, 0 if not.
 */
const unstart: ScriptSpec = {
  keys: 2,
  lua: `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local started = tonumber(redis.call('HGET', KEYS[1], ${lua(JOB_FIELD.attemptsStarted)}) or '0')
if started < 1 then return 0 end
redis.call('HINCRBY', KEYS[1], ${lua(JOB_FIELD.attemptsStarted)}, -1)
return 1
`,
};

/**
 * noteFirstFailure-1: notes when a job first failed since it last succeeded (\`JOB_FIELD.firstFailedAt\`), for
 * \`conveyor parked list\`, but only on a job that still exists. The note follows BullMQ's \`failed\` event, and with a
 * short backoff the retry can run and complete (and BullMQ delete the job) before the note arrives: a plain
 * HSETNX then made a new hash holding only the note, left in Redis for good (the race test found one in about
 * 40 runs).
 *   KEYS[1] the job hash  ARGV[1] when it failed (ms)
 * Returns 1 if it noted the failure, 0 if the job is gone or its first failure is noted already.
 */
const noteFirstFailure: ScriptSpec = {
  keys: 1,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], ${lua(JOB_FIELD.firstFailedAt)}, ARGV[1])
`,
};

const SCRIPTS = {
  depthCounts,
  addToBacklog,
  raisePriority,
  noteFirstFailure,
  pullForwardIfDirty,
  admitResync,
  countParked,
  unstart,
} as const;
type ScriptName = keyof typeof SCRIPTS;

export interface QueueScripts {
  depthCounts(keys: readonly string[], scores: readonly string[]): Promise<number[]>;
  addToBacklog(keys: readonly string[], args: readonly string[]): Promise<string[]>;
  raisePriority(keys: readonly string[], jobKeyPrefix: string, priority: number): Promise<number>;
  pullForwardIfDirty(keys: readonly string[], jobId: string, now: number): Promise<number>;
  admitResync(keys: readonly string[], args: readonly (string | number)[]): Promise<[admitted: number, backlog: number]>;
  noteFirstFailure(jobKey: string, at: number): Promise<number>;
  countParked(failedKey: string, jobKeyPrefix: string, terminalCodes: readonly string[]): Promise<[terminal: number, exhausted: number]>;
  unstart(jobKey: string, lockKey: string, token: string): Promise<number>;
}

type ScriptCaller = (...args: (string | number)[]) => Promise<unknown>;

/** Registers the scripts on a connection (ioredis sends EVALSHA and falls back to EVAL once). */
export function queueScripts(connection: RedisConnection): QueueScripts {
  const target = connection as unknown as Record<string, ScriptCaller | undefined>;
  for (const [name, spec] of Object.entries(SCRIPTS)) {
    const command = `conveyor_${name}`;
    if (target[command] === undefined) connection.defineCommand(command, { numberOfKeys: spec.keys, lua: spec.lua });
  }
  const call = (name: ScriptName, ...args: (string | number)[]) => {
    const fn = target[`conveyor_${name}`];
    if (fn === undefined) throw new Error(`script ${name} is not defined`);
    return fn.apply(connection, args);
  };
  return {
    depthCounts: async (keys, scores) => (await call('depthCounts', ...keys, ...scores)) as number[],
    addToBacklog: async (keys, args) => (await call('addToBacklog', ...keys, ...args)) as string[],
    raisePriority: async (keys, prefix, priority) => (await call('raisePriority', ...keys, prefix, priority)) as number,
    pullForwardIfDirty: async (keys, jobId, now) => (await call('pullForwardIfDirty', ...keys, jobId, now)) as number,
    admitResync: async (keys, args) => (await call('admitResync', ...keys, ...args)) as [number, number],
    noteFirstFailure: async (jobKey, at) => (await call('noteFirstFailure', jobKey, at)) as number,
    countParked: async (failedKey, prefix, codes) => (await call('countParked', failedKey, prefix, ...codes)) as [number, number],
    unstart: async (jobKey, lockKey, token) => (await call('unstart', jobKey, lockKey, token)) as number,
  };
}

/**
 * Takes back the start BullMQ counted for a job this worker fetched and hands back unstarted (unstart-2),
 * while it still holds the job's lock. A failure loses only that count (the job's next run would report
 * one run more), so it is logged and the hand-back goes on.
 */
export function unstarter(scripts: QueueScripts, location: QueueLocation, logger: Logger): (job: Job, token: string) => Promise<void> {
  return async (job, token) => {
    if (job.id === undefined) return;
    try {
      await scripts.unstart(jobKey(location, job.id), jobLockKey(location, job.id), token);
    } catch (error) {
      logger.debug({ jobId: job.id, err: errorMessage(error) }, 'could not take back the start of a job handed back unstarted');
    }
  };
}
