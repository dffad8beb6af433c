-- The session's unfinished messages, oldest first; prunes ids whose message expired.
-- KEYS: 1 session message index
-- ARGV: 1 message hash key prefix (same hash tag as KEYS[1]; the log is the hash's key .. ':log')
-- Returns {id1, seq1, id2, seq2, ...}.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local st = redis.call('HGET', ARGV[1] .. id, 'state')
  if not st then
    redis.call('ZREM', KEYS[1], id)
  elseif st == 'queued' or st == 'streaming' then
    table.insert(out, id)
    -- While it runs, the log's length is the last seq (see append_many.lua).
    table.insert(out, tostring(redis.call('LLEN', ARGV[1] .. id .. ':log')))
  end
end
return out
