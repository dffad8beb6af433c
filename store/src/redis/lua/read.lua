-- A consistent read of a message's state and its log from a position.
-- KEYS: 1 message hash, 2 log, 3 lease
-- ARGV: 1 first log index to return
-- Returns nil for an unknown message, else {state, seq, owner, {entries...}, lease alive 0/1}.
local h = redis.call('HMGET', KEYS[1], 'state', 'seq', 'owner')
if not h[1] then
  return false
end
local entries = redis.call('LRANGE', KEYS[2], ARGV[1], -1)
return {h[1], h[2], h[3] or '', entries, redis.call('EXISTS', KEYS[3])}
