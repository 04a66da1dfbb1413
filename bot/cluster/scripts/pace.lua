-- Reserve the next send slot of a bot in a chat.
-- KEYS[1]: the bot's next free instant; KEYS[2]: the chat's (bot.cluster.keys.pace_key).
-- ARGV[1], JSON: now (Unix seconds), bot_spacing (seconds the bot's slot moves on for these messages),
--   chat_spacing (seconds the chat's slot moves on), ttl_ms (the keys' lifetime), max_wait (the longest hold).
-- Returns JSON {wait}: the seconds to wait before sending.
local args = cjson.decode(ARGV[1])
local now = args.now
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or now), tonumber(redis.call('GET', KEYS[2]) or now))
at = math.min(at, now + args.max_wait)
redis.call('SET', KEYS[1], tostring(at + args.bot_spacing), 'PX', args.ttl_ms)
redis.call('SET', KEYS[2], tostring(at + args.chat_spacing), 'PX', args.ttl_ms)
return cjson.encode({wait = at - now})
