-- The owner of a running message puts it back after the store lost it (a restart without
-- persistence, a failover that lost asynchronously replicated writes, an AOF tail): the state,
-- the session's index entry, the lease, and the log entries the store does not have. The seqs
-- go on from there, so a follower sees a pause, never a gap or a repeat.
-- It never resurrects a message that ended elsewhere (a cancel or a takeover that reached the
-- store wins), never overwrites another owner's message, and honours a cancel's tombstone (a
-- cancel that reached the store while the message was missing): the message is put back and
-- the tombstone consumed, and the owner then ends it as cancelled.
-- KEYS: 1 message hash, 2 session message index, 3 lease, 4 log, 5 tombstone
-- ARGV: 1 message id, 2 owner, 3 content, 4 created (ms), 5 ttl (ms), 6 lease (ms),
--       7.. the message's delta entries (JSON), seq 1 first
-- Returns {1, appended, ''} when restored, {2, appended, canceller} when restored with a
-- tombstone waiting (end it cancelled), {0, state, ''} when it ended elsewhere,
-- {-1, '', ''} when another owner holds it or its log holds entries the caller does not have.
local h = redis.call('HMGET', KEYS[1], 'state', 'owner')
local st = h[1]
if st and st ~= 'queued' and st ~= 'streaming' then
  return {0, st, ''}
end
if st and h[2] ~= ARGV[2] then
  return {-1, '', ''}
end
local n = #ARGV - 6
local len = redis.call('LLEN', KEYS[4])
if len > n then
  return {-1, '', ''}
end
if not st then
  redis.call('HSET', KEYS[1], 'state', n > 0 and 'streaming' or 'queued', 'seq', 0,
    'owner', ARGV[2], 'created_ms', ARGV[4], 'content', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
elseif st == 'queued' and n > 0 then
  redis.call('HSET', KEYS[1], 'state', 'streaming')
end
for i = len + 1, n do
  redis.call('RPUSH', KEYS[4], ARGV[6 + i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if n > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[6])
local canceller = redis.call('GET', KEYS[5])
if canceller then
  redis.call('DEL', KEYS[5])
  return {2, n - len, canceller}
end
return {1, n - len, ''}
