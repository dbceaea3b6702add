--[[
  Reserves tokens from the cluster-wide API budget (a token bucket shared by every worker), or
  pauses the whole budget after the API server answered 429.

  The bucket may go negative: a caller that finds it empty still reserves its token and is told
  how long to wait, so waiting callers queue up in order instead of polling Redis. Refill starts
  no earlier than `ts`, which a pause moves into the future.

  KEYS[1]  the bucket hash: tokens (may be negative), ts (ms, may lie in the future while paused)
  ARGV[1]  rate: tokens per second (> 0)
  ARGV[2]  burst: bucket capacity (>= 1)
  ARGV[3]  cost: tokens to reserve (0 to only pause)
  ARGV[4]  pause: milliseconds during which no token is handed out (0 for none)

  Returns  milliseconds the caller must wait before using its tokens (0: use them now).
]]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])

-- Redis' clock, not the callers': workers on different machines agree on it.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now

if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end

if pause > 0 and now + pause > ts then
  -- Nothing may be spent before the pause ends; what was saved up is forfeited.
  tokens = math.min(tokens, 0)
  ts = now + pause
end

tokens = tokens - cost
local wait = ts - now
if tokens < 0 then
  wait = wait + math.ceil(-tokens * 1000 / rate)
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
-- Once the bucket would be full again its state says nothing; let it expire.
redis.call('PEXPIRE', KEYS[1], math.max(1000, (ts - now) + math.ceil((burst - tokens) * 1000 / rate) + 1000))
return wait
