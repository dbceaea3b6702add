// The Lua scripts behind own-write records (recordOwnWrite-1or2, checkOwnWrites-N), kept as strings so bundles (Lambda) carry them.

/** A worker's write answered: record the resourceVersion it produced, if the run still holds its queue lock. */
export const RECORD_OWN_WRITE_LUA = `--[[
  Records the resourceVersion one of a controller's writes produced, in a ring of the object's last
  few, and ends the write's "in flight" mark. Only a run that still holds its job's lock records:
  a run that lost it (a stale run) writes without hiding the event of its write.

  KEYS[1]  the object's own-writes hash: p (writes in flight), n (writes recorded), r0..r<slots-1>
  KEYS[2]  the lock key of the run's job (optional: without it the write is recorded unconditionally)
  ARGV[1]  the resourceVersion the write produced; '' when it failed
  ARGV[2]  the run's lock token (compared with KEYS[2])
  ARGV[3]  '1' when the write was marked in flight (p is decremented), else '0'
  ARGV[4]  time to live of the hash, ms
  ARGV[5]  slots in the ring

  Returns  1 when the resourceVersion was recorded, 0 when not (failed write, or lock lost)
]]
if ARGV[3] == '1' then
  local inFlight = redis.call('HINCRBY', KEYS[1], 'p', -1)
  if inFlight <= 0 then redis.call('HDEL', KEYS[1], 'p') end
end
local recorded = 0
if ARGV[1] ~= '' and (#KEYS < 2 or redis.call('GET', KEYS[2]) == ARGV[2]) then
  local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('HSET', KEYS[1], 'r' .. (n % tonumber(ARGV[5])), ARGV[1])
  recorded = 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return recorded
`;

/** The watcher's question for a batch of watch events: which are our own writes, and which objects have one in flight. */
export const CHECK_OWN_WRITES_LUA = `--[[
  For each watch event, whether its resourceVersion is one a controller's own write produced.

  KEYS[i]          the own-writes hash of event i's object
  ARGV[i]          event i's resourceVersion
  ARGV[#KEYS + 1]  slots in the ring

  Returns  one integer per event: 1 own write; 2 not recorded, but a write of ours to that object
           is in flight (ask again shortly); 0 neither (someone else's write)
]]
local slots = tonumber(ARGV[#KEYS + 1])
local fields = { 'p' }
for s = 0, slots - 1 do fields[#fields + 1] = 'r' .. s end
local out = {}
for i = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[i], unpack(fields))
  local verdict = 0
  for j = 2, #values do
    if values[j] == ARGV[i] then
      verdict = 1
      break
    end
  end
  if verdict == 0 and (tonumber(values[1]) or 0) > 0 then verdict = 2 end
  out[i] = verdict
end
return out
`;
