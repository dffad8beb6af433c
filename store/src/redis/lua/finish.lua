-- Terminal transition (completed, failed or cancelled): compare-and-set from queued/streaming,
-- write the terminal entry into the log, start the grace period, record the turn in the
-- session's history (the user turn, and the answer if it has text), drop the lease, publish the entry. With ARGV[10] = '1' it only acts when
-- the owner's lease has expired (the `worker_lost` takeover).
-- The entry is ARGV[2] .. seq .. ARGV[3]: the caller renders it around the seq only this
-- script knows for sure.
-- A cancel of a message that does not exist (yet) leaves a tombstone (ARGV[13] > 0): create.lua
-- then creates that id directly as `cancelled`, so a cancel that overtook its message's create
-- still wins. The tombstone is only set if none is there (the first cancel is remembered).
-- The takeover (ARGV[10] = '1') does not act on the first sight of an expired lease: a lease
-- also runs out while the store itself was away (a restart, a failover), and an owner that is
-- alive renews it as soon as the store is back. So the first look only records when (the
-- store's clock) in a suspect marker, which the owner's renewal clears; the takeover happens at
-- a later look once the owner stayed silent for ARGV[14] ms more while the store answered.
-- KEYS: 1 message hash, 2 log, 3 grace marker, 4 session history, 5 lease, 6 tombstone,
--       7 suspect marker
-- ARGV: 1 new state, 2 entry head, 3 entry tail, 4 session channel, 5 ttl (ms), 6 grace (ms),
--       7 now (ms), 8 history cap (turn pairs; 0 = none), 9 history ttl (ms),
--       10 only if the lease expired ('1' / '0'),
--       11 most answer bytes recorded in the history (whole entries until at least this many),
--       12 the canceller replica (tombstone value), 13 tombstone ttl (ms; '0' = no tombstone),
--       14 how long the owner must stay silent after the lease was first seen expired (ms),
--       15 the message id (recorded with its turns),
--       16 '1' when the entry carries no usage: the script adds it, counted from the log (the
--          last text entry's running token count, the first's prompt estimate; without any
--          entry, a quarter of the content's bytes) and marked estimated
-- Returns {1, new state, seq, owner} when this call made the transition,
-- {0, current state, grace, ''} when already terminal (grace = 1 while the grace marker lives),
-- {2, current state, 0, owner} when the owner's lease is still alive (takeover refused),
-- {3, current state, 0, owner} when the lease has expired but not for long enough (suspected),
-- {-1, '', 0, ''} when the message is unknown or expired,
-- {-2, '', first, ''} when it is unknown and a tombstone now remembers the cancel (first = 1 when
-- this call wrote it, 0 when an earlier cancel's tombstone was already there).
local h = redis.call('HMGET', KEYS[1], 'state', 'owner', 'content')
local st = h[1]
if not st then
  if ARGV[13] ~= '0' then
    local first = redis.call('SET', KEYS[6], ARGV[12], 'NX', 'PX', ARGV[13])
    return {-2, '', first and 1 or 0, ''}
  end
  return {-1, '', 0, ''}
end
if st ~= 'queued' and st ~= 'streaming' then
  return {0, st, redis.call('EXISTS', KEYS[3]), ''}
end
if ARGV[10] == '1' then
  if redis.call('EXISTS', KEYS[5]) == 1 then
    return {2, st, 0, h[2] or ''}
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local since = tonumber(redis.call('GET', KEYS[7]))
  if not since then
    redis.call('SET', KEYS[7], now, 'PX', 4 * tonumber(ARGV[14]))
    return {3, st, 0, h[2] or ''}
  end
  if now - since < tonumber(ARGV[14]) then
    return {3, st, 0, h[2] or ''}
  end
end
-- A running message's log holds one entry per seq (see append_many.lua): its length is the
-- last seq, which the hash records from now on.
local seq = redis.call('LLEN', KEYS[2])
local entry = ARGV[2] .. seq .. ARGV[3]
if ARGV[16] == '1' then
  local completion, prompt = 0, nil
  if seq > 0 then
    local ok, last = pcall(cjson.decode, redis.call('LINDEX', KEYS[2], -1))
    if ok and type(last) == 'table' then
      completion = tonumber(last.tokens) or 0
    end
    local ok2, first = pcall(cjson.decode, redis.call('LINDEX', KEYS[2], 0))
    if ok2 and type(first) == 'table' then
      prompt = tonumber(first.prompt_tokens)
    end
  end
  prompt = prompt or math.ceil(#(h[3] or '') / 4)
  entry = string.sub(entry, 1, -2) .. string.format(
    ',"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"estimated":true}}',
    prompt, completion, prompt + completion)
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_ms', ARGV[7], 'seq', seq)
redis.call('RPUSH', KEYS[2], entry)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[6])
redis.call('DEL', KEYS[5], KEYS[7])
local cap = tonumber(ARGV[8])
if cap > 0 then
  -- Read the log a page at a time and stop at the byte bound: ending a very long answer must
  -- not decode megabytes inside this script while every other stream waits.
  local parts, size, max_bytes, from = {}, 0, tonumber(ARGV[11]), 0
  while size < max_bytes do
    local page = redis.call('LRANGE', KEYS[2], from, from + 63)
    if #page == 0 then
      break
    end
    for _, e in ipairs(page) do
      local ok, c = pcall(cjson.decode, e)
      if ok and c.kind == 'delta' then
        table.insert(parts, c.text)
        size = size + #c.text
        if size >= max_bytes then
          break
        end
      end
    end
    from = from + 64
  end
  redis.call('RPUSH', KEYS[4],
    cjson.encode({role = 'user', content = h[3] or '', message_id = ARGV[15], status = ARGV[1]}))
  local answer = table.concat(parts)
  if answer ~= '' then
    -- An answer that produced no text (failed or cancelled before its first token) is left
    -- out: models reject empty assistant turns.
    redis.call('RPUSH', KEYS[4],
      cjson.encode({role = 'assistant', content = answer, status = ARGV[1], message_id = ARGV[15]}))
  end
  redis.call('LTRIM', KEYS[4], -2 * cap, -1)
  redis.call('PEXPIRE', KEYS[4], ARGV[9])
end
redis.call('SPUBLISH', ARGV[4], entry)
return {1, ARGV[1], seq, h[2] or ''}
