-- Append one delta to the log and publish it, if the message still runs and the seq is next.
-- KEYS: 1 message hash, 2 log
-- ARGV: 1 seq, 2 chunk JSON, 3 session channel, 4 ttl (ms)
-- Returns {1, previous state} | {0, terminal state} | {-1, ''} missing | {-2, last seq} out of order.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  return {-1, ''}
end
if st ~= 'queued' and st ~= 'streaming' then
  return {0, st}
end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
if last + 1 ~= tonumber(ARGV[1]) then
  return {-2, tostring(last)}
end
if st == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'streaming', 'seq', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('HSET', KEYS[1], 'seq', ARGV[1])
end
redis.call('RPUSH', KEYS[2], ARGV[2])
if last == 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('SPUBLISH', ARGV[3], ARGV[2])
return {1, st}
