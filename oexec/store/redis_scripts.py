"""The Lua scripts behind RedisStore: each store operation is one atomic round trip.

Redis runs a script without interleaving any other command, so the check and the writes
inside one script cannot race with another daemon on the same Redis. Key names come in
``KEYS`` (built by oexec/store/keys.py); the only key built here is ``order:{id}`` for an
id read inside the script, from the ``order_prefix`` argument.

Return shapes are small arrays with an integer status first, so Python never parses
error text.

The scripts that store events with a change (``SAVE``, ``ADD_FILL``, ``OUTBOX_PUT``) can
also number them in the shared event sequence and append them to its stream, in the same
atomic step (``NUMBER``; oexec/events/sequence.py, "Numbered by the store"): after the
script's own keys come the sequence's ``seq``, ``topic_seq`` and stream keys, after its
own arguments ``count, maxlen`` and ``topic, logged bytes`` per event (count 0: none, and
no keys). A stored change's reply then carries ``seq, topic_seq`` per event after its
status.
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

#: The shared sequence's part of a script (module doc): ``number_events(kb, ab)`` numbers
#: and appends the events described from ``ARGV[ab + 1]`` on, with the sequence's keys
#: from ``KEYS[kb + 1]`` on, as the sequence's APPEND does; returns {seq, topic_seq, ...}.
NUMBER = """
local function number_events(kb, ab)
  local out = {}
  local n = tonumber(ARGV[ab + 1])
  for i = 0, n - 1 do
    local topic, data = ARGV[ab + 3 + 2 * i], ARGV[ab + 4 + 2 * i]
    local seq = redis.call('INCR', KEYS[kb + 1])
    local tseq = redis.call('HINCRBY', KEYS[kb + 2], topic, 1)
    redis.call('XADD', KEYS[kb + 3], 'MAXLEN', '~', ARGV[ab + 2], seq .. '-0',
      'seq', seq, 'topic_seq', tseq, 'topic', topic, 'data', data)
    out[#out + 1] = seq
    out[#out + 1] = tseq
  end
  return out
end
"""

#: KEYS: order, open, open:sym, states, coid, outbox, outbox:entries, reply, owedfills
#:       [, the sequence's 3 keys]
#: ARGV: body, new_version, order_ttl, is_open, order_id, state_entry,
#:       outbox_id ('' = none), outbox_body, now_ms, reply ('' = none), reply_ttl,
#:       owes_fills ('1'/'0'), then the events to number (NUMBER)
#: -> {WON, seq, topic_seq, ...} | {LOST, stored_version} | {MISSING}
#: A save whose bytes equal what is stored at new_version is a retry that already
#: landed (the reply was lost): it succeeds without a second history entry, and with
#: the numbers its events got then (field ``n``), so they are not logged twice.
SAVE = (
    NUMBER
    + """
local cur = redis.call('HMGET', KEYS[1], 'v', 'o', 'n')
if not cur[1] then
  return {-1}
end
local stored = tonumber(cur[1])
local new = tonumber(ARGV[2])
if stored ~= new - 1 then
  if stored == new and cur[2] == ARGV[1] then
    local out = {1}
    if ARGV[13] ~= '0' and cur[3] then
      for x in string.gmatch(cur[3], '%d+') do out[#out + 1] = tonumber(x) end
    end
    return out
  end
  return {0, stored}
end
local numbers = number_events(9, 12)
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'o', ARGV[1], 'n', table.concat(numbers, ','))
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
table.insert(numbers, 1, 1)
return numbers
"""
)

#: KEYS: fill marker, fills list, outbox, outbox:entries[, the sequence's 3 keys]
#: ARGV: order_id, fill body, ttl, outbox_id ('' = none), outbox_body, now_ms, then the
#:       events to number (NUMBER)
#: -> {1, seq, topic_seq, ...} new | {0} duplicate
ADD_FILL = (
    NUMBER
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
    redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
  end
  local numbers = number_events(4, 6)
  table.insert(numbers, 1, 1)
  return numbers
end
return {0}
"""
)

#: KEYS: outbox, outbox:entries[, the sequence's 3 keys]
#: ARGV: outbox_id, outbox_body, now_ms, then the events to number (NUMBER)
#: -> {1, seq, topic_seq, ...}: the entry (the same id again replaces it) and its events
OUTBOX_PUT = (
    NUMBER
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local numbers = number_events(2, 3)
table.insert(numbers, 1, 1)
return numbers
"""
)

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
