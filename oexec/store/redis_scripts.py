"""The Lua scripts behind RedisStore: each store operation is one atomic round trip.

Redis runs a script without interleaving any other command, so the check and the writes
inside one script cannot race with another daemon on the same Redis. Key names come in
``KEYS`` (built by oexec/store/keys.py); the only key built here is ``order:{id}`` for an
id read inside the script, from the ``order_prefix`` argument.

Return shapes are small arrays with an integer status first, so Python never parses
error text.
"""

from __future__ import annotations

#: Status values in the first slot of a script's reply.
LOST = 0
WON = 1
MISSING = -1
ID_TAKEN = -2

#: KEYS: idempotency, order, coid, open, open:sym, history, history:sym, states, reply,
#:       outbox, outbox:entries
#: ARGV: order_id, claim_ttl, body, version, order_ttl, created_at, is_open, state_entry,
#:       order_prefix, history_cutoff_ms, outbox_id ('' = none), outbox_body, now_ms
#: -> {WON} | {LOST, existing_id, existing_body|nil, reply|nil} | {ID_TAKEN}
CLAIM = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local body = redis.call('HGET', ARGV[9] .. existing, 'o')
  return {0, existing, body, redis.call('GET', KEYS[9])}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-2}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[9])
redis.call('HSET', KEYS[2], 'v', ARGV[4], 'o', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[5])
if ARGV[7] == '1' then
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
end
local cutoff = '(' .. ARGV[10]
redis.call('ZADD', KEYS[6], ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', cutoff)
redis.call('RPUSH', KEYS[8], ARGV[8])
redis.call('EXPIRE', KEYS[8], ARGV[5])
if ARGV[11] ~= '' then
  redis.call('ZADD', KEYS[10], ARGV[13], ARGV[11])
  redis.call('HSET', KEYS[11], ARGV[11], ARGV[12])
end
return {1}
"""

#: KEYS: order, open, open:sym, states, coid, outbox, outbox:entries, reply, owedfills
#: ARGV: body, new_version, order_ttl, is_open, order_id, state_entry,
#:       outbox_id ('' = none), outbox_body, now_ms, reply ('' = none), reply_ttl,
#:       owes_fills ('1'/'0')
#: -> {WON} | {LOST, stored_version} | {MISSING}
#: A save whose bytes equal what is stored at new_version is a retry that already
#: landed (the reply was lost): it succeeds without a second history entry.
SAVE = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'o')
if not cur[1] then
  return {-1}
end
local stored = tonumber(cur[1])
local new = tonumber(ARGV[2])
if stored ~= new - 1 then
  if stored == new and cur[2] == ARGV[1] then
    return {1}
  end
  return {0, stored}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'o', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[2], ARGV[5])
  redis.call('SADD', KEYS[3], ARGV[5])
else
  redis.call('SREM', KEYS[2], ARGV[5])
  redis.call('SREM', KEYS[3], ARGV[5])
end
redis.call('RPUSH', KEYS[4], ARGV[6])
redis.call('EXPIRE', KEYS[4], ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[3])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[9], ARGV[7])
  redis.call('HSET', KEYS[7], ARGV[7], ARGV[8])
end
if ARGV[10] ~= '' then
  redis.call('SET', KEYS[8], ARGV[10], 'EX', ARGV[11])
end
if ARGV[12] == '1' then
  redis.call('SADD', KEYS[9], ARGV[5])
end
return {1}
"""

#: KEYS: fill marker, fills list, outbox, outbox:entries
#: ARGV: order_id, fill body, ttl, outbox_id ('' = none), outbox_body, now_ms
#: -> 1 new | 0 duplicate
ADD_FILL = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
    redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
  end
  return 1
end
return 0
"""

#: KEYS: outbox, outbox:entries. ARGV: older_than_ms, limit, now_ms
#: -> {id, body, id, body, ...}: entries stamped before older_than_ms, re-stamped now.
#: An id without a body (acked between the two keys' writes cannot happen: one script)
#: is dropped from the index.
OUTBOX_TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[2], id)
  if body then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = body
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

#: KEYS: a pointer key (idempotency:/coid:) holding an order id. ARGV: order_prefix
#: -> order body | nil
GET_VIA = """
local id = redis.call('GET', KEYS[1])
if not id then
  return false
end
return redis.call('HGET', ARGV[1] .. id, 'o')
"""

#: KEYS: an open set. ARGV: order_prefix -> bodies; ids whose order expired are dropped.
OPEN_ORDERS = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local body = redis.call('HGET', ARGV[1] .. id, 'o')
  if body then
    out[#out + 1] = body
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
"""

#: KEYS: a history zset. ARGV: order_prefix, max score, min score, limit
#: -> bodies, newest first; ids whose order expired are dropped.
HISTORY = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', ARGV[1] .. id, 'o')
  if body then
    out[#out + 1] = body
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

#: KEYS: an open set. ARGV: order_prefix -> count of ids whose order still exists.
OPEN_COUNT = """
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    n = n + 1
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return n
"""

#: KEYS: order, idempotency, coid, open, open:sym, history, history:sym, states, reply
#: ARGV: claimed version, order_id -> 1 released | 0 (changed since, or gone)
#: Pointer keys are deleted only while they still point at this order.
RELEASE = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[8], KEYS[9])
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('SREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('ZREM', KEYS[7], ARGV[2])
return 1
"""
