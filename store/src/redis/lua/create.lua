-- Create a message in `queued` unless it exists (idempotent on message id), and give its
-- owner the lease. If a cancel reached the store first (its tombstone is there), the message is
-- created directly as `cancelled` instead: terminal entry in the log, grace marker, the user
-- turn in the history, the entry published — what finish.lua does for a cancel before the
-- first token — and the tombstone is consumed. So a cancel wins whatever the order.
-- KEYS: 1 message hash, 2 session message index, 3 lease, 4 tombstone, 5 log, 6 grace marker,
--       7 session history
-- ARGV: 1 message id, 2 owner replica, 3 content, 4 now (ms), 5 ttl (ms), 6 lease (ms),
--       7 terminal entry of a cancel before the first token (JSON, seq 0), 8 session channel,
--       9 grace (ms), 10 history cap (turn pairs; 0 = none), 11 history ttl (ms),
--       12 the start announcement (JSON), published on the session channel when created, so
--       every socket of the session learns of the message
-- Returns {1, 'queued', ''} when created, {0, state, ''} when it already existed,
-- {2, 'cancelled', canceller} when a tombstone ended it at once.
local st = redis.call('HGET', KEYS[1], 'state')
if st then
  return {0, st, ''}
end
local function index()
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local canceller = redis.call('GET', KEYS[4])
if canceller then
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'seq', 0, 'owner', ARGV[2],
    'created_ms', ARGV[4], 'finished_ms', ARGV[4], 'content', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  index()
  redis.call('RPUSH', KEYS[5], ARGV[7])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  redis.call('SET', KEYS[6], 'cancelled', 'PX', ARGV[9])
  local cap = tonumber(ARGV[10])
  if cap > 0 then
    -- As finish.lua: the user turn, and no assistant turn for an answer without text.
    redis.call('RPUSH', KEYS[7],
      cjson.encode({role = 'user', content = ARGV[3], message_id = ARGV[1], status = 'cancelled'}))
    redis.call('LTRIM', KEYS[7], -2 * cap, -1)
    redis.call('PEXPIRE', KEYS[7], ARGV[11])
  end
  redis.call('SPUBLISH', ARGV[8], ARGV[12])
  redis.call('SPUBLISH', ARGV[8], ARGV[7])
  return {2, 'cancelled', canceller}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'seq', 0, 'owner', ARGV[2],
  'created_ms', ARGV[4], 'content', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
index()
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[6])
redis.call('SPUBLISH', ARGV[8], ARGV[12])
return {1, 'queued', ''}
