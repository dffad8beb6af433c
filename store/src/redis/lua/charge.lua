-- Charges a user's token budget (or, with 0 tokens, only looks at it): a counter over a fixed
-- window that starts at the first charge.
-- KEYS: 1 the user's counter
-- ARGV: 1 tokens to charge (0: look only), 2 limit, 3 window (ms)
-- Returns {1, used} while there is room, {0, ms until the window frees} once it is spent.
local n = tonumber(ARGV[1])
local used
if n > 0 then
  used = redis.call('INCRBY', KEYS[1], n)
else
  used = tonumber(redis.call('GET', KEYS[1]) or '0')
end
local ttl = redis.call('PTTL', KEYS[1])
if used > 0 and ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  ttl = tonumber(ARGV[3])
end
if used >= tonumber(ARGV[2]) then
  return {0, ttl}
end
return {1, used}
