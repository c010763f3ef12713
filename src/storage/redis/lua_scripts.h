// The Lua scripts that give the Redis Cluster engine the StorageEngine contract: each runs
// atomically on the master of one slot, over the keys of one record (src/storage/engine.h
// has the rules; src/storage/record_merge.cc is the same logic for RocksDB, and the
// conformance suite holds both to it).
//
// Layout (redis_engine.cc builds the keys; every key of a record shares its {hash tag}):
//   C  hash   item key -> cell
//   Z  zset   every item key of C at score 0, for ordered range reads (ZRANGEBYLEX)
//   M  string the record's range tombstones: cmsgpack array of {start, end, version}
//   I  zset   the table's record ids in this bucket (the scan index)
//   W  string a counter bumped by a write that changed nothing (see kWriteScript)
// A cell is [flag 'v'|'t'][version time: 8 bytes][expires: 8 bytes][nonce length: 2 bytes]
// [nonce][value]; a version is [time: 8 bytes][nonce], all integers big-endian, the version
// time with its sign bit flipped, so comparing versions as bytes orders them as numbers.
// Bytes are compared with `cmp`, never Lua's `<`, which follows the server's locale.
#pragma once

namespace stategate::storage::redis_lua {

inline constexpr char kCommon[] = R"lua(
local ZERO8 = string.rep('\0', 8)
local function cmp(a, b)
  if a == b then return 0 end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 else return 1 end
    end
  end
  if #a < #b then return -1 else return 1 end
end
local function nonce_len(cell) return string.byte(cell, 18) * 256 + string.byte(cell, 19) end
local function version(cell) return string.sub(cell, 2, 9) .. string.sub(cell, 20, 19 + nonce_len(cell)) end
local function in_range(key, s, e) return cmp(key, s) >= 0 and (e == '' or cmp(key, e) < 0) end
-- whether [os, oe) contains [s, e); an empty end is unbounded
local function contains(os, oe, s, e)
  if cmp(s, os) < 0 then return false end
  if oe == '' then return true end
  return e ~= '' and cmp(e, oe) <= 0
end
local function load_tombstones(key)
  local raw = redis.call('GET', key)
  if not raw then return {} end
  return cmsgpack.unpack(raw)
end
local function covered(tombstones, key, v)
  for _, t in ipairs(tombstones) do
    if in_range(key, t[1], t[2]) and cmp(t[3], v) > 0 then return true end
  end
  return false
end
)lua";

// KEYS: C Z M I W. ARGV: record id, version, grace cutoff (an 8-byte version time),
// number of range deletes, then [start, end] per range delete, then [key, cell] per point
// (a put or a tombstone), the ops already folded. Returns 1 if anything changed.
//
// A write that changes nothing is a replay of one already applied here (or older than what
// is stored). It bumps W so that this connection's WAIT, sent right after, waits for the
// replicas to reach this point, and so for the write it repeats: without it a retry whose
// first attempt timed out in WAIT could be acknowledged before any replica has that write.
inline constexpr char kWriteBody[] = R"lua(
local C, Z, M, I, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, v, cutoff = ARGV[1], ARGV[2], ARGV[3]
local tombstones = load_tombstones(M)
local tombstones_changed, changed = false, false
local a = 5
for _ = 1, tonumber(ARGV[4]) do
  local s, e = ARGV[a], ARGV[a + 1]
  a = a + 2
  local known = false
  for _, t in ipairs(tombstones) do
    if cmp(t[3], v) >= 0 and contains(t[1], t[2], s, e) then known = true break end
  end
  if not known then
    local kept = {}
    for _, t in ipairs(tombstones) do
      if not (cmp(t[3], v) < 0 and contains(s, e, t[1], t[2])) then kept[#kept + 1] = t end
    end
    kept[#kept + 1] = {s, e, v}
    tombstones, tombstones_changed = kept, true
    local hi = '+'
    if e ~= '' then hi = '(' .. e end
    for _, k in ipairs(redis.call('ZRANGEBYLEX', Z, '[' .. s, hi)) do
      local cell = redis.call('HGET', C, k)
      if cell and cmp(version(cell), v) < 0 then
        redis.call('HDEL', C, k)
        redis.call('ZREM', Z, k)
        changed = true
      end
    end
  end
end
while a <= #ARGV do
  local k, cell = ARGV[a], ARGV[a + 1]
  a = a + 2
  local old = redis.call('HGET', C, k)
  if (not old or cmp(version(old), v) < 0) and not covered(tombstones, k, v) then
    redis.call('HSET', C, k, cell)
    if not old then redis.call('ZADD', Z, 0, k) end
    changed = true
  end
end
local kept = {}
for _, t in ipairs(tombstones) do
  if cmp(string.sub(t[3], 1, 8), cutoff) >= 0 then kept[#kept + 1] = t else tombstones_changed = true end
end
if tombstones_changed then
  if #kept == 0 then redis.call('DEL', M) else redis.call('SET', M, cmsgpack.pack(kept)) end
  changed = true
end
if changed then
  redis.call('ZADD', I, 0, id)
  return 1
end
redis.call('INCR', W)
return 0
)lua";

// KEYS: C Z M. ARGV: now (8-byte unsigned micros), items allowed, bytes allowed, items
// already in the page (0 = this read must return at least one item if any is live), mode
// 'k' then the keys to read in order, or mode 'r' then start and end (empty = unbounded).
// Returns [key, cell, key, cell, ..., more] with only live cells; more = 1 if the read
// stopped at a limit with a live item left.
inline constexpr char kReadBody[] = R"lua(
local C, Z, M = KEYS[1], KEYS[2], KEYS[3]
local now, max_items, max_bytes, prior = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tombstones = load_tombstones(M)
local out, items, bytes, more = {}, 0, 0, 0
local function live(k, cell)
  if string.sub(cell, 1, 1) ~= 'v' then return false end
  local expires = string.sub(cell, 10, 17)
  if expires ~= ZERO8 and cmp(expires, now) <= 0 then return false end
  return not covered(tombstones, k, version(cell))
end
-- false when the item does not fit: the read stops there
local function take(k, cell)
  local size = #k + #cell - 19 - nonce_len(cell)
  if items + prior > 0 and (items >= max_items or bytes >= max_bytes or size > max_bytes - bytes) then
    return false
  end
  items, bytes = items + 1, bytes + size
  out[#out + 1] = k
  out[#out + 1] = cell
  return true
end
if ARGV[5] == 'k' then
  for a = 6, #ARGV do
    local cell = redis.call('HGET', C, ARGV[a])
    if cell and live(ARGV[a], cell) and not take(ARGV[a], cell) then more = 1 break end
  end
else
  local lo, hi, batch = '[' .. ARGV[6], '+', 128
  if ARGV[7] ~= '' then hi = '(' .. ARGV[7] end
  while more == 0 do
    local keys = redis.call('ZRANGEBYLEX', Z, lo, hi, 'LIMIT', 0, batch)
    if #keys == 0 then break end
    local cells = redis.call('HMGET', C, unpack(keys))
    for i, k in ipairs(keys) do
      if cells[i] and live(k, cells[i]) and not take(k, cells[i]) then more = 1 break end
    end
    if #keys < batch then break end
    lo = '(' .. keys[#keys]
  end
end
out[#out + 1] = more
return out
)lua";

// KEYS: C Z M I. ARGV: record id, now - grace as an 8-byte version time, and as 8-byte
// unsigned micros. Drops tombstones and expired cells past their grace, range tombstones
// past theirs, and the record from the scan index once nothing of it is left. Returns the
// number of cells dropped.
inline constexpr char kPurgeBody[] = R"lua(
local C, Z, M, I = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, cutoff_version, cutoff_micros = ARGV[1], ARGV[2], ARGV[3]
local dropped = 0
local all = redis.call('HGETALL', C)
for i = 1, #all, 2 do
  local k, cell = all[i], all[i + 1]
  local expires = string.sub(cell, 10, 17)
  local gone
  if string.sub(cell, 1, 1) == 't' then
    gone = cmp(string.sub(cell, 2, 9), cutoff_version) < 0
  else
    gone = expires ~= ZERO8 and cmp(expires, cutoff_micros) < 0
  end
  if gone then
    redis.call('HDEL', C, k)
    redis.call('ZREM', Z, k)
    dropped = dropped + 1
  end
end
local tombstones = load_tombstones(M)
local kept = {}
for _, t in ipairs(tombstones) do
  if cmp(string.sub(t[3], 1, 8), cutoff_version) >= 0 then kept[#kept + 1] = t end
end
if #kept ~= #tombstones then
  if #kept == 0 then redis.call('DEL', M) else redis.call('SET', M, cmsgpack.pack(kept)) end
end
if redis.call('EXISTS', C) == 0 and redis.call('EXISTS', M) == 0 then
  redis.call('DEL', Z)
  redis.call('ZREM', I, id)
end
return dropped
)lua";

}  // namespace stategate::storage::redis_lua
