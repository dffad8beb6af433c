-- What a client needs to redraw its session: the history (finished turns, with their message
-- ids and statuses) and the messages still running, with their text so far.
-- KEYS: 1 session history, 2 session message index
-- ARGV: 1 message hash key prefix (same hash tag; the log is the hash's key .. ':log'),
--       2 most answer bytes returned per running message (whole entries until at least this)
-- Returns {{history entry JSON...}, {id, content, state, last seq, text, ...}}.
local hist = redis.call('LRANGE', KEYS[1], 0, -1)
local running = {}
local max_bytes = tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'state', 'content')
  if h[1] == 'queued' or h[1] == 'streaming' then
    local log = ARGV[1] .. id .. ':log'
    local n = redis.call('LLEN', log)
    local parts, size, from = {}, 0, 0
    while size < max_bytes and from < n do
      for _, e in ipairs(redis.call('LRANGE', log, from, from + 63)) do
        local ok, c = pcall(cjson.decode, e)
        if ok and c.kind == 'delta' then
          table.insert(parts, c.text)
          size = size + #c.text
        end
      end
      from = from + 64
    end
    for _, v in ipairs({id, h[2] or '', h[1], tostring(n), table.concat(parts)}) do
      table.insert(running, v)
    end
  end
end
return {hist, running}
