-- All-or-nothing admission: token buckets, concurrency slots, budget reservations.
-- KEYS[i] is the i-th check's key; ARGV holds 4 values per check:
--   'b', capacity, rate, amount       token bucket take (hash t=tokens, ts=stamp)
--   's', member, limit, ttl           concurrency slot (sorted set member -> expiry)
--   'g', limit or '', amount, ttl     budget reservation (hash s=spent, r=reserved; nano-dollars)
-- Time is the Redis server's, so every replica shares one clock.
-- Returns {1, idx, remaining, reset, ...} for each bucket on success,
--         {0, failed index (0-based), retry_after, spent, reserved} on refusal.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local failed = nil
local retry = 0
local spent, reserved = 0, 0
local pending = {}

for i = 1, #KEYS do
  local key = KEYS[i]
  local base = (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'b' then
    local cap = tonumber(ARGV[base + 2])
    local rate = tonumber(ARGV[base + 3])
    local need = math.min(tonumber(ARGV[base + 4]), cap)
    local st = redis.call('HMGET', key, 't', 'ts')
    local tokens = cap
    if st[1] then
      tokens = math.min(cap, tonumber(st[1]) + math.max(0, now - tonumber(st[2])) * rate)
    end
    if tokens >= need then
      pending[i] = tokens - need
    else
      failed = failed or i
      retry = math.max(retry, (need - tokens) / rate)
    end
  elseif kind == 's' then
    local member = ARGV[base + 2]
    local live = redis.call('ZCOUNT', key, '(' .. string.format('%.17g', now), '+inf')
    local held = redis.call('ZSCORE', key, member)
    if (not held) and live >= tonumber(ARGV[base + 3]) then
      failed = failed or i
      retry = math.max(retry, 1)
    end
  else
    local st = redis.call('HMGET', key, 's', 'r')
    local s = tonumber(st[1] or '0')
    local r = tonumber(st[2] or '0')
    local limit = ARGV[base + 2]
    if limit ~= '' and s + r + tonumber(ARGV[base + 3]) > tonumber(limit) then
      if not failed then
        spent, reserved = s, r
      end
      failed = failed or i
    end
  end
end

if failed then
  return {0, failed - 1, string.format('%.17g', retry), string.format('%d', spent), string.format('%d', reserved)}
end

local out = {1}
for i = 1, #KEYS do
  local key = KEYS[i]
  local base = (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'b' then
    local cap = tonumber(ARGV[base + 2])
    local rate = tonumber(ARGV[base + 3])
    local tokens = pending[i]
    local reset = math.max(0, (cap - tokens) / rate)
    redis.call('HSET', key, 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
    redis.call('PEXPIRE', key, math.ceil(reset * 1000) + 1000)
    out[#out + 1] = i - 1
    out[#out + 1] = string.format('%.17g', tokens)
    out[#out + 1] = string.format('%.17g', reset)
  elseif kind == 's' then
    local ttl_ms = math.ceil(tonumber(ARGV[base + 4]) * 1000)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now))
    redis.call('ZADD', key, string.format('%.17g', now + ttl_ms / 1000), ARGV[base + 2])
    if redis.call('PTTL', key) < ttl_ms then
      redis.call('PEXPIRE', key, ttl_ms)
    end
  else
    redis.call('HINCRBY', key, 'r', ARGV[base + 3])
    redis.call('HSETNX', key, 's', 0)
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[base + 4]) * 1000))
  end
end
return out
