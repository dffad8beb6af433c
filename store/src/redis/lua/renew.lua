-- The owner renews its lease on a running message, and learns its state (so a producer that
-- missed a cancel nudge still stops within one renewal period). It also keeps the message and
-- its log alive while it runs, so an answer longer than the TTL never expires mid-stream, and
-- clears a follower's suspicion that it was lost (see finish.lua's takeover).
-- KEYS: 1 message hash, 2 lease, 3 log, 4 session message index, 5 suspect marker
-- ARGV: 1 owner replica, 2 lease (ms), 3 ttl (ms)
-- Returns the state, 'missing' for an unknown message, or 'lost' when another owner holds it.
local h = redis.call('HMGET', KEYS[1], 'state', 'owner')
local st = h[1]
if not st then
  return 'missing'
end
if st ~= 'queued' and st ~= 'streaming' then
  return st
end
if h[2] ~= ARGV[1] then
  return 'lost'
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return st
