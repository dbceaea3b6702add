// The Lua script behind Event series (noteEvent-2), kept as a string so bundles (Lambda) carry it.

/** One occurrence of an Event: count it in its series and decide, by the object's spam filter, whether it is written now. */
export const NOTE_EVENT_LUA = `--[[
  Counts one occurrence of an Event in its series and takes a token from the spam filter of the
  object it is about (client-go's EventSourceObjectSpamFilter: a token bucket per object).

  KEYS[1]  the series hash: n (occurrences), name (the Event's name, set by the first occurrence)
  KEYS[2]  the object's spam-filter hash: t (tokens), ts (ms of the last refill)
  ARGV[1]  the Event name to use if this occurrence starts the series
  ARGV[2]  now, ms
  ARGV[3]  how long the series lasts after its last occurrence, ms
  ARGV[4]  burst: tokens of a full bucket
  ARGV[5]  ms per token refilled

  Returns  { occurrences so far, the Event's name, 1 when this occurrence may be written now else 0 }
]]
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n == 1 then redis.call('HSET', KEYS[1], 'name', ARGV[1]) end
local name = redis.call('HGET', KEYS[1], 'name') or ARGV[1]
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local now = tonumber(ARGV[2])
local burst = tonumber(ARGV[4])
local every = tonumber(ARGV[5])
local t = tonumber(redis.call('HGET', KEYS[2], 't') or burst)
local ts = tonumber(redis.call('HGET', KEYS[2], 'ts') or now)
t = math.min(burst, t + math.max(0, now - ts) / every)
local write = 0
if t >= 1 then
  t = t - 1
  write = 1
end
redis.call('HSET', KEYS[2], 't', tostring(t), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst * every))
return { n, name, write }`;
