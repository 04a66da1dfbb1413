-- Claim an update for a front.
-- KEYS[1]: the update's key (bot.cluster.keys.update_key).
-- ARGV[1], JSON: front (the claiming front's id), ttl (seconds the claim and the "done" mark live),
--   heartbeats (the key prefix of the fronts' heartbeats).
-- Returns JSON {state}: "done" (answered already), "claimed" (the front's now) or "held" (a live front has it).
local args = cjson.decode(ARGV[1])
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then return cjson.encode({state = 'done'}) end
if holder and holder ~= args.front and redis.call('EXISTS', args.heartbeats .. holder) == 1 then
  return cjson.encode({state = 'held'})
end
redis.call('SET', KEYS[1], args.front, 'EX', args.ttl)
return cjson.encode({state = 'claimed'})
