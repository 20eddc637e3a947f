-- Settlement: refund or charge token buckets, free slots, turn reservations into spend, add to
-- integer hashes (the ledger), and set alert-threshold flags that were not set yet.
-- KEYS and ARGV are read with cursors; per op:
--   'a', capacity, rate, amount                  KEYS: bucket
--   'x', member                                  KEYS: slot set
--   'g', release, charge, ttl, flag_ttl, n, l1..ln   KEYS: budget, flag1..flagn
--   'h', ttl, n, field1, amount1 .. fieldn, amountn   KEYS: hash
-- Returns {op index (0-based), spent, ...} for each budget op, then '|', then the flag keys set.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ki, ai, idx = 1, 1, 0
local out = {}
local flags = {}

while ai <= #ARGV do
  local kind = ARGV[ai]
  if kind == 'a' then
    local key = KEYS[ki]
    local cap = tonumber(ARGV[ai + 1])
    local rate = tonumber(ARGV[ai + 2])
    local st = redis.call('HMGET', key, 't', 'ts')
    local tokens = cap
    if st[1] then
      tokens = math.min(cap, tonumber(st[1]) + math.max(0, now - tonumber(st[2])) * rate)
    end
    tokens = math.min(cap, tokens + tonumber(ARGV[ai + 3]))
    redis.call('HSET', key, 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
    redis.call('PEXPIRE', key, math.ceil(math.max(0, (cap - tokens) / rate) * 1000) + 1000)
    ki, ai = ki + 1, ai + 4
  elseif kind == 'x' then
    redis.call('ZREM', KEYS[ki], ARGV[ai + 1])
    ki, ai = ki + 1, ai + 2
  elseif kind == 'g' then
    local key = KEYS[ki]
    local r = redis.call('HINCRBY', key, 'r', 0 - tonumber(ARGV[ai + 1]))
    if r < 0 then
      redis.call('HSET', key, 'r', 0)
    end
    local s = redis.call('HINCRBY', key, 's', ARGV[ai + 2])
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[ai + 3]) * 1000))
    local flag_ms = math.ceil(tonumber(ARGV[ai + 4]) * 1000)
    local n = tonumber(ARGV[ai + 5])
    for j = 1, n do
      if s >= tonumber(ARGV[ai + 5 + j]) then
        if redis.call('SET', KEYS[ki + j], '1', 'NX', 'PX', flag_ms) then
          flags[#flags + 1] = KEYS[ki + j]
        end
      end
    end
    out[#out + 1] = idx
    out[#out + 1] = s
    ki, ai = ki + 1 + n, ai + 6 + n
  else
    local key = KEYS[ki]
    local n = tonumber(ARGV[ai + 2])
    for j = 1, n do
      redis.call('HINCRBY', key, ARGV[ai + 1 + 2 * j], ARGV[ai + 2 + 2 * j])
    end
    redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[ai + 1]) * 1000))
    ki, ai = ki + 1, ai + 3 + 2 * n
  end
  idx = idx + 1
end

out[#out + 1] = '|'
for _, f in ipairs(flags) do
  out[#out + 1] = f
end
return out
