-- Create a message in `queued` unless it exists (idempotent on message id), and give its
-- owner the lease.
-- KEYS: 1 message hash, 2 session message index, 3 lease
-- ARGV: 1 message id, 2 owner replica, 3 content, 4 now (ms), 5 ttl (ms), 6 lease (ms)
-- Returns {1, 'queued'} when created, {0, state} when it already existed.
local st = redis.call('HGET', KEYS[1], 'state')
if st then
  return {0, st}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'seq', 0, 'owner', ARGV[2],
  'created_ms', ARGV[4], 'content', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[6])
return {1, 'queued'}
