// The Lua script behind the API budget (takeApiToken-1), kept as a string so bundles (Lambda) carry it: a
// file read beside the module would be missing from an esbuild bundle.
export const TAKE_API_TOKEN_LUA = `--[[
  Reserves tokens from the cluster-wide API budget (a token bucket shared by every worker), pauses
  the whole budget after the API server answered 429, or tells a caller whether a pause is on.

  The bucket may go negative: a caller that finds it empty still reserves its token and is told
  how long to wait, so waiting callers queue up in order instead of polling Redis. Refill starts
  no earlier than \`ts\`, which a pause moves to its end.

  KEYS[1]  the bucket hash: tokens (may be negative), ts (ms), pausedUntil (ms)
  ARGV[1]  rate: tokens per second (> 0)
  ARGV[2]  burst: bucket capacity (>= 1)
  ARGV[3]  cost: tokens to reserve; 0 reserves nothing and only reports the pause
  ARGV[4]  pause: milliseconds during which nobody may spend a token (0 for none)

  Returns  with cost > 0: milliseconds the caller must wait before using its token (0: now);
           with cost = 0: milliseconds left of the current pause (0: none).
]]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])

-- Redis' clock, not the callers': workers on different machines agree on it.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'pausedUntil')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local pausedUntil = tonumber(state[3]) or 0

if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end

if pause > 0 and now + pause > pausedUntil then
  -- Nothing may be spent before the pause ends, and what was saved up is forfeited.
  pausedUntil = now + pause
  tokens = math.min(tokens, 0)
  ts = math.max(ts, pausedUntil)
end

local wait = math.max(0, pausedUntil - now)
if cost > 0 then
  tokens = tokens - cost
  wait = math.max(0, ts - now)
  if tokens < 0 then
    wait = wait + math.ceil(-tokens * 1000 / rate)
  end
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts), 'pausedUntil', tostring(pausedUntil))
-- Once the bucket would be full again and no pause is on, its state says nothing; let it expire.
local full = math.max(ts, pausedUntil) - now + math.ceil((burst - tokens) * 1000 / rate)
redis.call('PEXPIRE', KEYS[1], math.max(1000, full + 1000))
return wait
`;
