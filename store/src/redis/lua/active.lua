-- The session's unfinished messages, oldest first; prunes ids whose message expired.
-- KEYS: 1 session message index
-- ARGV: 1 message hash key prefix (same hash tag as KEYS[1])
-- Returns {id1, seq1, id2, seq2, ...}.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'state', 'seq')
  if not h[1] then
    redis.call('ZREM', KEYS[1], id)
  elseif h[1] == 'queued' or h[1] == 'streaming' then
    table.insert(out, id)
    table.insert(out, h[2])
  end
end
return out
