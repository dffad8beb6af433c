-- Terminal transition (completed, failed or cancelled): compare-and-set from queued/streaming,
-- write the terminal entry into the log, start the grace period, publish the entry.
-- The entry is ARGV[2] .. seq .. ARGV[3]: the caller renders it around the seq only this
-- script knows for sure.
-- KEYS: 1 message hash, 2 log, 3 grace marker
-- ARGV: 1 new state, 2 entry head, 3 entry tail, 4 session channel, 5 ttl (ms), 6 grace (ms),
--       7 now (ms)
-- Returns {1, new state, seq, owner} when this call made the transition,
-- {0, current state, grace, ''} when already terminal (grace = 1 while the grace marker lives),
-- {-1, '', 0, ''} when the message is unknown or expired.
local h = redis.call('HMGET', KEYS[1], 'state', 'seq', 'owner')
local st = h[1]
if not st then
  return {-1, '', 0, ''}
end
if st ~= 'queued' and st ~= 'streaming' then
  return {0, st, redis.call('EXISTS', KEYS[3]), ''}
end
local seq = h[2]
local entry = ARGV[2] .. seq .. ARGV[3]
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_ms', ARGV[7])
redis.call('RPUSH', KEYS[2], entry)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[6])
redis.call('SPUBLISH', ARGV[4], entry)
return {1, ARGV[1], tonumber(seq), h[3] or ''}
