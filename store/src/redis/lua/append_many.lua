-- Append one delta to each of several messages' logs and publish it, where the message still
-- runs and the seq is its next. Batching appends of many streams into one script call is what
-- lets the store carry more tokens per second than one round trip per token could.
-- While a message runs, its log holds exactly one entry per seq, so the log's length is its
-- last seq: the push itself tells whether the seq was the next one (and is undone if not).
-- That is three calls per entry (HGET, RPUSH, SPUBLISH), the least that checks the state,
-- writes the log and publishes; the hash's `seq` field is only written at the end (finish).
-- KEYS: pairs (message hash, log) per message
-- ARGV: 1 ttl (ms), then triples (seq, chunk JSON, session channel) per message
-- Returns pairs (code, detail) per message:
--   1, previous state | 0, terminal state | -1, '' missing | -2, last seq (out of order).
local ttl = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local mk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local seq, json, channel = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local st = redis.call('HGET', mk, 'state')
  if not st then
    out[2 * i - 1], out[2 * i] = -1, ''
  elseif st ~= 'queued' and st ~= 'streaming' then
    out[2 * i - 1], out[2 * i] = 0, st
  else
    local n = redis.call('RPUSH', lk, json)
    if n ~= tonumber(seq) then
      redis.call('RPOP', lk)
      out[2 * i - 1], out[2 * i] = -2, tostring(n - 1)
    else
      if st == 'queued' then
        redis.call('HSET', mk, 'state', 'streaming')
        redis.call('PEXPIRE', mk, ttl)
      end
      if n == 1 then
        redis.call('PEXPIRE', lk, ttl)
      end
      redis.call('SPUBLISH', channel, json)
      out[2 * i - 1], out[2 * i] = 1, st
    end
  end
end
return out
