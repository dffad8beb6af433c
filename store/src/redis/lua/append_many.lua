-- Append one delta to each of several messages' logs and publish it, where the message still
-- runs and the seq is its next. Batching appends of many streams into one script call is what
-- lets the store carry more tokens per second than one round trip per token could.
-- KEYS: pairs (message hash, log) per message
-- ARGV: 1 ttl (ms), then triples (seq, chunk JSON, session channel) per message
-- Returns pairs (code, detail) per message:
--   1, previous state | 0, terminal state | -1, '' missing | -2, last seq (out of order).
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local mk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local seq, json, channel = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local h = redis.call('HMGET', mk, 'state', 'seq')
  local st = h[1]
  if not st then
    out[2 * i - 1], out[2 * i] = -1, ''
  elseif st ~= 'queued' and st ~= 'streaming' then
    out[2 * i - 1], out[2 * i] = 0, st
  else
    local last = tonumber(h[2])
    if last + 1 ~= tonumber(seq) then
      out[2 * i - 1], out[2 * i] = -2, tostring(last)
    else
      if st == 'queued' then
        redis.call('HSET', mk, 'state', 'streaming', 'seq', seq)
        redis.call('PEXPIRE', mk, ttl)
      else
        redis.call('HSET', mk, 'seq', seq)
      end
      redis.call('RPUSH', lk, json)
      if last == 0 then
        redis.call('PEXPIRE', lk, ttl)
      end
      redis.call('SPUBLISH', channel, json)
      out[2 * i - 1], out[2 * i] = 1, st
    end
  end
end
return out
