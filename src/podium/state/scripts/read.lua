-- Status reads that need the server's clock.
-- ARGV[1] = 'b': KEYS are buckets, ARGV[2..] = capacity, rate pairs -> {tokens, reset, ...}
-- ARGV[1] = 's': KEYS are slot sets -> {live count, ...}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i = 1, #KEYS do
  if ARGV[1] == 'b' then
    local cap = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    local st = redis.call('HMGET', KEYS[i], 't', 'ts')
    local tokens = cap
    if st[1] then
      tokens = math.min(cap, tonumber(st[1]) + math.max(0, now - tonumber(st[2])) * rate)
    end
    out[#out + 1] = string.format('%.17g', tokens)
    out[#out + 1] = string.format('%.17g', math.max(0, (cap - tokens) / rate))
  else
    out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. string.format('%.17g', now), '+inf')
  end
end
return out
