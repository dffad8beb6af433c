-- A consistent read of a message's state and its log from a position.
-- KEYS: 1 message hash, 2 log, 3 lease
-- ARGV: 1 first log index to return
-- Returns nil for an unknown message, else {state, last seq, owner, {entries...}, lease alive 0/1}.
local h = redis.call('HMGET', KEYS[1], 'state', 'seq', 'owner')
if not h[1] then
  return false
end
local seq = h[2]
if h[1] == 'queued' or h[1] == 'streaming' then
  -- While it runs, the log's length is the last seq (see append_many.lua).
  seq = tostring(redis.call('LLEN', KEYS[2]))
end
local entries = redis.call('LRANGE', KEYS[2], ARGV[1], -1)
return {h[1], seq, h[3] or '', entries, redis.call('EXISTS', KEYS[3])}
