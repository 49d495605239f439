/**
 * The Redis store's Lua: one script per registry operation, each atomic.
 *
 * They are loaded as one function library (`FUNCTION LOAD`, Redis 7 and
 * Valkey) and called with `FCALL`, so the helpers below are built once at
 * load rather than on every call, which halves what a lookup costs Redis;
 * on a server without functions each runs as a script (`EVALSHA`).
 *
 * Layout under a prefix `P` (every key shares the hash tag `{P}`, so a
 * registry lives in one cluster slot), sized for memory (see docs/redis.md):
 *
 * - `{P}:c:<id>`: one string per credential, keyed by the random part of its
 *   credential id. That id is derived from the token's digest (72 bits of a
 *   second SHA-256, see `registry.ts`), so a lookup by token and one by id
 *   find the same key and no second index is needed. The string is
 *   `v|a|u|l|k|#t|t#p|pc`: a verifier (22 characters: 128 other bits of the
 *   digest, never the token), issuedAt, lastUsedAt, the lease of calls in
 *   flight (empty: none), the horizon `k` up to which the indexes already
 *   cover it, then thread and provider instance, each after its byte length,
 *   and capabilities as JSON (empty: none). A lookup reads it and writes it
 *   back with its TTL: two Redis calls. A removed credential's string
 *   becomes its tombstone, `v!x|e|w|#t|t#p|p`: why it left, the end of its
 *   retention, and whether a refusal of its token was logged;
 * - `{P}:t:<threadId>`: a hash of a thread's credential ids (listpack-small);
 * - `{P}:d`: the deadline index, a sorted set of ids by a deadline never later
 *   than the credential's own, so a sweep pops what is due in O(due). A use
 *   rewrites it only once the deadline passed the horizon `k`, an eighth of
 *   the idle timeout beyond the last indexed one;
 * - `{P}:q`: the ids of tombstones in burial order, to forget the oldest first;
 * - channel `{P}:events`: every removal, published by the script that made it.
 *
 * A credential's string has the TTL of its deadline plus the tombstone
 * retention plus two sweep intervals, renewed on every use, so some replica's
 * sweep reclaims it (and runs its hooks) before Redis forgets it; the shared
 * keys that list it have at least as long, so Redis forgets a credential even
 * if every replica is gone.
 * Time is the registry's `now`, passed in, never Redis `TIME`, and TTLs are
 * relative to it, so a registry on a `TestClock` stays consistent. Every
 * time and setting is whole milliseconds: records are read with `%d+`.
 */
import * as Redis from "effect/persistence/Redis"
import { createHash } from "node:crypto"

/**
 * A credential as the scripts return it: the random part of its id, thread,
 * provider instance, capabilities (`""`: none), issuedAt, lastUsedAt, lease
 * (`""`: none).
 */
export type RecordFields = readonly [
  id: string,
  threadId: string,
  providerInstanceId: string,
  capabilities: string,
  issuedAt: string,
  lastUsedAt: string,
  lease: string
]

/** A removal: its reason, then the credential's fields. */
export type RemovedFields = readonly [reason: string, ...RecordFields]

/**
 * The arguments every script starts with, in this order: the key prefix
 * (`{P}:`), the registry's settings (see `settings`), now (whole milliseconds), and this replica's id.
 */
export type Common = readonly [string, string, number, string]

/**
 * The registry's lifetimes in whole milliseconds, as the scripts use them:
 * the library reads whole numbers only. Idle timeout and lifetimes are
 * floored: with whole-millisecond times, a credential `n` ms past its last
 * use is live while `n <= idle`, which is `n <= floor(idle)`, so flooring
 * changes no verdict. Tombstone retention and the sweep interval are ceiled:
 * they only set how long a tombstone and a record's TTL last, which must not
 * end early. Each is
 * capped at 10^15 ms (some 31,000 years), past which `String` would write
 * an exponent. `-1`: no absolute lifetime, no cap on tombstones.
 */
export interface Limits {
  readonly idleMillis: number
  readonly maxLifeMillis: number
  readonly absoluteMillis: number
  readonly retentionMillis: number
  readonly maxTombstones: number
  readonly sweepMillis: number
}

const farthest = 1e15
const down = (ms: number) => Math.min(Math.floor(ms), farthest)
const up = (ms: number) => Math.min(Math.ceil(ms), farthest)

/** `Limits` from a registry's resolved options, which may hold fractions of a millisecond. */
export const limits = (config: {
  readonly idleTimeoutMillis: number
  readonly maxLifetimeMillis: number
  readonly absoluteLifetimeMillis: number
  readonly tombstoneRetentionMillis: number
  readonly maxTombstones: number
  readonly sweepIntervalMillis: number
}): Limits => ({
  idleMillis: down(config.idleTimeoutMillis),
  maxLifeMillis: down(config.maxLifetimeMillis),
  absoluteMillis: config.absoluteLifetimeMillis >= farthest ? -1 : down(config.absoluteLifetimeMillis),
  retentionMillis: up(config.tombstoneRetentionMillis),
  maxTombstones: config.maxTombstones >= farthest ? -1 : down(config.maxTombstones),
  sweepMillis: up(config.sweepIntervalMillis)
})

/**
 * The settings the scripts need, as one argument: idle timeout, max
 * lifetime, absolute lifetime, tombstone retention, max tombstones and the
 * sweep interval, each a whole number (rounded here again, so no caller can hand the library a
 * fraction). The library parses each distinct one once.
 */
export const settings = (l: Limits): string =>
  [
    down(l.idleMillis),
    down(l.maxLifeMillis),
    l.absoluteMillis < 0 ? -1 : down(l.absoluteMillis),
    up(l.retentionMillis),
    l.maxTombstones < 0 ? -1 : down(l.maxTombstones),
    up(l.sweepMillis)
  ].join(",")

const common = 4

// Shared by every script. `false` is how Lua's `redis.call` says nil.
// `read` returns r[1] v, r[2] t, r[3] p, r[4] c, r[5] a, r[6] u, r[7] l,
// r[8] k, r[9] x, r[10] e, r[11] w; a tombstone has r[9], and r[5]..r[8] false.
const prelude = `
local argv, base, nowText, now, idleMs, maxLife, absolute, retention, maxTomb, grace, replica, dk, qk, slack, events

-- Settings parsed once per distinct text: parsing them on every call cost a
-- lookup as much as its Redis calls. A script run (no library) parses each time.
local parsed, parsedCount = {}, 0

local function setup(args)
  argv = args
  base = args[1]
  local s = parsed[args[2]]
  if not s then
    local i, m, a, r, t, w = string.match(args[2], "^(%d+),(%d+),(-?%d+),(%d+),(-?%d+),(%d+)$")
    s = { tonumber(i), tonumber(m), tonumber(a), tonumber(r), tonumber(t), math.floor(tonumber(i) / 8), 2 * tonumber(w) }
    if parsedCount >= 64 then parsed, parsedCount = {}, 0 end
    parsed[args[2]] = s
    parsedCount = parsedCount + 1
  end
  idleMs, maxLife, absolute, retention, maxTomb, slack, grace = s[1], s[2], s[3], s[4], s[5], s[6], s[7]
  nowText = args[3]
  now = tonumber(nowText)
  replica = args[4]
  dk = base .. "d"
  qk = base .. "q"
  events = {}
end

local function num(x) return string.format("%.0f", x) end
local function whole(x)
  local n = tonumber(x)
  if n then return num(math.floor(n)) end
  return nil
end
local function ck(id) return base .. "c:" .. id end
local function tk(thread) return base .. "t:" .. thread end

local function parse(s)
  if not s then return { false } end
  local r = { string.sub(s, 1, 22) }
  local tl, at
  if string.byte(s, 23) == 124 then
    local a, u, l, k
    a, u, l, k, tl, at = string.match(s, "^|(%d+)|(%d+)|(%d*)|(%d+)|(%d+)|()", 23)
    if not at then
      -- Times with a fraction, as an earlier version could write them: read
      -- floored (and so written back whole), rather than lost to every call.
      a, u, l, k, tl, at = string.match(s, "^|([%d.]+)|([%d.]+)|([%d.]*)|([%d.]+)|(%d+)|()", 23)
      if not at then return { false } end
      a, u, k = whole(a), whole(u), whole(k)
      if l ~= "" then l = whole(l) end
      if not (a and u and k and l) then return { false } end
    end
    r[5], r[6], r[8] = a, u, k
    if l ~= "" then r[7] = l else r[7] = false end
    r[9] = false
  else
    local x, e, w
    x, e, w, tl, at = string.match(s, "^!([^|]+)|(%d+)|(%d)|(%d+)|()", 23)
    r[5], r[6], r[7], r[8] = false, false, false, false
    r[9], r[10] = x, e
    r[11] = w == "1"
  end
  if not at then return { false } end
  tl = tonumber(tl)
  r[2] = string.sub(s, at, at + tl - 1)
  local pl, pat = string.match(s, "^(%d+)|()", at + tl)
  pl = tonumber(pl)
  r[3] = string.sub(s, pat, pat + pl - 1)
  local c = string.sub(s, pat + pl)
  if c ~= "" then r[4] = c else r[4] = false end
  return r
end

local function tail(r) return #r[2] .. "|" .. r[2] .. #r[3] .. "|" .. r[3] end

local function encode(r)
  return r[1] .. "|" .. r[5] .. "|" .. r[6] .. "|" .. (r[7] or "") .. "|" .. r[8] .. "|" .. tail(r) .. (r[4] or "")
end

local function read(id) return parse(redis.call("GET", ck(id))) end

local function expiresAt(a, u)
  local e = u + maxLife
  if absolute >= 0 and a + absolute < e then e = a + absolute end
  return e
end

local function idleAt(u, l)
  local t = u + idleMs
  if l and l > t then t = l end
  return t
end

local function deadReason(r)
  local a, u, l = tonumber(r[5]), tonumber(r[6]), tonumber(r[7])
  local e = expiresAt(a, u)
  local i = idleAt(u, l)
  if now <= i and now <= e then return false end
  if i < e then return "idle" end
  return "expired"
end

local function deadlineOf(r)
  local a, u, l = tonumber(r[5]), tonumber(r[6]), tonumber(r[7])
  return math.min(expiresAt(a, u), idleAt(u, l))
end

-- A live record outlasts its deadline by the retention and two sweep
-- intervals (on real time), so a sweep reaches it before Redis forgets it
-- and its hooks run; only every replica gone that long loses them.
local function ttlOf(deadline)
  local t = math.floor(deadline - now + retention + grace)
  if t < 1 then t = 1 end
  return t
end

-- Lengthens a shared key's TTL to at least ms, with an eighth more, so most
-- uses find it long enough and skip the write; a key without one gets it.
local function extend(key, ms)
  local t = redis.call("PTTL", key)
  if t == -2 or (t >= 0 and t >= ms) then return end
  redis.call("PEXPIRE", key, ms + math.floor(ms / 8))
end

-- Writes a live credential with the TTL of its deadline. Past the horizon,
-- the deadline index and the keys that list it move on too, an eighth of the
-- idle timeout further, so most writes touch nothing else. Those keys keep
-- an idle timeout more: the horizon is in the clock of the replica that set
-- it, and a replica whose clock is behind renews the record, by its own, for
-- that long before its uses pass the horizon again.
local function save(id, r)
  local deadline = deadlineOf(r)
  if deadline <= tonumber(r[8]) then
    redis.call("SET", ck(id), encode(r), "PX", ttlOf(deadline))
    return
  end
  r[8] = num(deadline + slack)
  redis.call("SET", ck(id), encode(r), "PX", ttlOf(deadline))
  redis.call("ZADD", dk, num(deadline), id)
  local horizon = ttlOf(tonumber(r[8])) + idleMs
  extend(tk(r[2]), horizon)
  extend(dk, horizon)
end

local function use(id, r)
  if now > tonumber(r[6]) then
    r[6] = num(now)
    save(id, r)
  end
end

-- Turns a removed credential into its tombstone: what a refusal's log line
-- needs, kept for the retention; past the cap, the oldest tombstones go first.
local function bury(id, r, reason, warned)
  local key = ck(id)
  if retention <= 0 or maxTomb == 0 then
    redis.call("DEL", key)
    return
  end
  if maxTomb > 0 then
    while redis.call("LLEN", qk) >= maxTomb do
      local oldest = redis.call("LPOP", qk)
      if not oldest then break end
      if read(oldest)[9] then redis.call("DEL", ck(oldest)) end
    end
  end
  local w = "0"
  if warned then w = "1" end
  redis.call("SET", key, r[1] .. "!" .. reason .. "|" .. num(now + retention) .. "|" .. w .. "|" .. tail(r), "PX", retention)
  redis.call("RPUSH", qk, id)
  extend(qk, retention)
end

-- Marks a tombstone's token as refused in the log.
local function warned(id, r)
  redis.call("SET", ck(id), r[1] .. "!" .. r[9] .. "|" .. r[10] .. "|1|" .. tail(r), "KEEPTTL")
end

-- Forgets tombstones past their retention from the front of the burial
-- queue (Redis's TTL does it on real time; this, on the registry's).
-- Returns whether it stopped at the limit.
local function pruneQueue(limit)
  for _ = 1, limit do
    local head = redis.call("LINDEX", qk, 0)
    if not head then return false end
    local r = read(head)
    if r[9] then
      if tonumber(r[10]) >= now then return false end
      redis.call("DEL", ck(head))
    end
    redis.call("LPOP", qk)
  end
  return true
end

local function record(id, r)
  return { id, r[2], r[3], r[4] or "", r[5], r[6], r[7] or "" }
end

local function remove(id, r, reason, warn)
  redis.call("HDEL", tk(r[2]), id)
  redis.call("ZREM", dk, id)
  local ev = { reason, id, r[2], r[3], r[4] or "", r[5], r[6], r[7] or "" }
  bury(id, r, reason, warn)
  events[#events + 1] = ev
  return ev
end

-- Revokes one member of an index for reason, or for the deadline it
-- already crossed: 1 if it was live. A member that is gone or already a
-- tombstone is only dropped from the index, with staleCmd (HDEL or ZREM).
local function revokeMember(id, reason, staleCmd, staleKey)
  local r = read(id)
  if not r[1] or r[9] then
    redis.call(staleCmd, staleKey, id)
    return 0
  end
  local dead = deadReason(r)
  remove(id, r, dead or reason, false)
  if dead then return 0 end
  return 1
end

-- One message per script, so a batch of removals costs one publish.
local function publish()
  if #events > 0 then redis.call("PUBLISH", base .. "events", cjson.encode({ replica, events })) end
end

-- Approximate between sweeps: an index entry may lag its credential's use.
local function live()
  return redis.call("ZCOUNT", dk, num(now), "+inf")
end
`

/** One operation: its body, its arguments, and the same as a standalone script. */
export interface Operation<Params extends ReadonlyArray<any>, R> {
  readonly name: string
  readonly body: string
  readonly params: (common: Common, ...params: Params) => ReadonlyArray<unknown>
  /** The same operation as a standalone script, for a server without functions. */
  readonly script: Redis.Script<{ params: [Common, ...Params]; result: R }>
}

const operation = <R>() =>
<Params extends ReadonlyArray<any>>(
  name: string,
  body: string,
  f: (...params: Params) => ReadonlyArray<unknown>
): Operation<Params, R> => {
  const params = (common: Common, ...rest: Params) => [...common, ...f(...rest)]
  return {
    name,
    body,
    params,
    script: Redis.script(params, { numberOfKeys: 0, lua: `${prelude}\nsetup(ARGV)\n${body}` }).withReturnType<R>() as never
  }
}

type Reply = ReadonlyArray<unknown>

/**
 * `resolve`: the credential's record as it stands after the use (a string,
 * `v|a|u|l|k|#t|t#p|pc`: one bulk reply is what costs Redis and the client
 * least, and the fast path sends the record it read as it is),
 * `[deadReason, removed]`, or a
 * refusal: `[reason]`, or `[reason, leftAs, t, p]` for the first refusal of a
 * tombstone's token (the caller logs it: the mark is set here, atomically,
 * so one replica logs it once). A verifier that does not match is `unknown`.
 */
export const resolve = operation<string | Reply>()(
  "resolve",
  `
local id = argv[${common + 1}]
local key = ck(id)
local s = redis.call("GET", key)
if not s or string.sub(s, 1, 22) ~= argv[${common + 2}] then return { "unknown" } end
-- A live credential that stays within its horizon: read, checked and
-- written back as text, without taking it apart.
if string.byte(s, 23) == 124 then
  local a, u, l, k, rest = string.match(s, "^|(%d+)|(%d+)|(%d*)|(%d+)|()", 23)
  -- A record that is not all whole numbers takes the full parse below.
  if a then
    local an, un, ln = tonumber(a), tonumber(u), tonumber(l)
    local e, i = expiresAt(an, un), idleAt(un, ln)
    if now <= i and now <= e then
      if argv[${common + 3}] ~= "1" or now <= un then return s end
      e, i = expiresAt(an, now), idleAt(now, ln)
      local deadline = i
      if e < i then deadline = e end
      if deadline <= tonumber(k) then
        local v = string.sub(s, 1, 23) .. a .. "|" .. nowText .. "|" .. l .. "|" .. k .. "|" .. string.sub(s, rest)
        redis.call("SET", key, v, "PX", ttlOf(deadline))
        return v
      end
    end
  end
end
local r = parse(s)
if not r[1] then return { "unknown" } end
if r[9] then
  if tonumber(r[10]) < now then return { "unknown" } end
  local reason = "revoked"
  if r[9] == "idle" or r[9] == "expired" then reason = r[9] end
  if r[11] then return { reason } end
  warned(id, r)
  return { reason, r[9], r[2], r[3] }
end
local dead = deadReason(r)
if dead then
  local ev = remove(id, r, dead, true)
  publish()
  return { dead, ev }
end
use(id, r)
return encode(r)
`,
  (id: string, verifier: string, slide: boolean) => [id, verifier, slide ? "1" : "0"]
)

/**
 * `issue`: `["ok", live, removed]`, `["thread" | "registry", live, removed]`
 * or `["collision"]` (the id already taken, by a credential or a tombstone: mint again).
 */
export const issue = operation<Reply>()(
  "issue",
  `
local id, v, thread, provider, caps = argv[${common + 1}], argv[${common + 2}], argv[${common + 3}], argv[${
    common + 4
  }], argv[${common + 5}]
local replace = argv[${common + 6}] == "1"
local maxThread, maxAll = tonumber(argv[${common + 7}]), tonumber(argv[${common + 8}])
local tkey = tk(thread)
if redis.call("EXISTS", ck(id)) == 1 then return { "collision" } end
local count = 0
local targets = {}
for _, m in ipairs(redis.call("HKEYS", tkey)) do
  local r = read(m)
  if not r[1] or r[9] then
    redis.call("HDEL", tkey, m)
  else
    local dead = deadReason(r)
    if dead then
      remove(m, r, dead, false)
    else
      count = count + 1
      if replace and r[3] == provider then targets[#targets + 1] = { m, r } end
    end
  end
end
local freed = #targets
if maxThread >= 0 and count - freed >= maxThread then
  publish()
  return { "thread", live(), events }
end
if maxAll >= 0 and redis.call("ZCARD", dk) - freed >= maxAll then
  for _, m in ipairs(redis.call("ZRANGEBYSCORE", dk, "-inf", "(" .. num(now))) do
    local r = read(m)
    if not r[1] or r[9] then
      redis.call("ZREM", dk, m)
    else
      local dead = deadReason(r)
      if dead then remove(m, r, dead, false) end
    end
  end
  if redis.call("ZCARD", dk) - freed >= maxAll then
    publish()
    return { "registry", live(), events }
  end
end
for _, t in ipairs(targets) do remove(t[1], t[2], "replaced", false) end
local stamp = num(now)
local c = false
if caps ~= "" then c = caps end
redis.call("HSET", tkey, id, "")
save(id, { v, thread, provider, c, stamp, stamp, false, "-1" })
publish()
return { "ok", live(), events }
`,
  (request: {
    readonly id: string
    readonly verifier: string
    readonly threadId: string
    readonly providerInstanceId: string
    readonly capabilities: string
    readonly replace: boolean
    readonly maxPerThread: number
    readonly maxCredentials: number
  }) => [
    request.id,
    request.verifier,
    request.threadId,
    request.providerInstanceId,
    request.capabilities,
    request.replace ? "1" : "0",
    request.maxPerThread,
    request.maxCredentials
  ]
)

/** `touch`: `[touched, live, removed]`. */
export const touch = operation<Reply>()(
  "touch",
  `
local tkey = tk(argv[${common + 1}])
local count = 0
for _, m in ipairs(redis.call("HKEYS", tkey)) do
  local r = read(m)
  if not r[1] or r[9] then
    redis.call("HDEL", tkey, m)
  else
    local dead = deadReason(r)
    if dead then remove(m, r, dead, false) else use(m, r); count = count + 1 end
  end
end
publish()
return { count, live(), events }
`,
  (threadId: string) => [threadId]
)

/** `revoke` and `revokeProviderSession`: `[wasLive, live, removed]`. */
export const revoke = operation<Reply>()(
  "revoke",
  `
local id, reason = argv[${common + 1}], argv[${common + 2}]
local r = read(id)
if not r[1] or r[9] then return { 0, live(), events } end
local dead = deadReason(r)
remove(id, r, dead or reason, false)
publish()
if dead then return { 0, live(), events } end
return { 1, live(), events }
`,
  (id: string, reason: string) => [id, reason]
)

/** `revokeThread`: `[wereLive, live, removed]`. */
export const revokeThread = operation<Reply>()(
  "revokeThread",
  `
local tkey, reason = tk(argv[${common + 1}]), argv[${common + 2}]
local count = 0
for _, m in ipairs(redis.call("HKEYS", tkey)) do
  count = count + revokeMember(m, reason, "HDEL", tkey)
end
publish()
return { count, live(), events }
`,
  (threadId: string, reason: string) => [threadId, reason]
)

/**
 * One batch of `revokeAll`: `[wereLive, examined, live, removed]`. Every
 * index member it examined leaves the index (revoked, reclaimed, or dropped
 * as stale), so a caller repeats while `examined` is the limit: a batch of
 * stale members removes nothing yet must not end the loop.
 */
export const revokeBatch = operation<Reply>()(
  "revokeBatch",
  `
local reason, limit = argv[${common + 1}], tonumber(argv[${common + 2}])
local count = 0
local members = redis.call("ZRANGE", dk, 0, limit - 1)
for _, m in ipairs(members) do
  count = count + revokeMember(m, reason, "ZREM", dk)
end
publish()
return { count, #members, live(), events }
`,
  (reason: string, limit: number) => [reason, limit]
)

/**
 * One batch of a sweep: pops what is due (re-indexing what a use kept
 * alive), forgets old tombstones: `[more, live, removed]`.
 */
export const sweepBatch = operation<Reply>()(
  "sweepBatch",
  `
local limit = tonumber(argv[${common + 1}])
local due = redis.call("ZRANGEBYSCORE", dk, "-inf", "(" .. num(now), "LIMIT", 0, limit)
for _, m in ipairs(due) do
  local r = read(m)
  if not r[1] or r[9] then
    redis.call("ZREM", dk, m)
  else
    local dead = deadReason(r)
    if dead then
      remove(m, r, dead, false)
    else
      r[8] = "-1"
      save(m, r)
    end
  end
end
local pruned = pruneQueue(limit)
publish()
local more = 0
if #due == limit or pruned then more = 1 end
return { more, live(), events }
`,
  (limit: number) => [limit]
)

/**
 * `list`, one page of the deadline index by rank from `offset`:
 * `[more, live, ...records]`, only live credentials.
 */
export const list = operation<Reply>()(
  "list",
  `
local offset, limit = tonumber(argv[${common + 1}]), tonumber(argv[${common + 2}])
local page = redis.call("ZRANGE", dk, offset, offset + limit - 1)
local more = 0
if #page == limit then more = 1 end
local out = { more, live() }
for _, m in ipairs(page) do
  local r = read(m)
  if r[1] and not r[9] and not deadReason(r) then out[#out + 1] = record(m, r) end
end
return out
`,
  (offset: number, limit: number) => [offset, limit]
)

/** `get`: the record of a live credential, or an empty array. Not a use. */
export const get = operation<Reply>()(
  "get",
  `
local id = argv[${common + 1}]
local r = read(id)
if not r[1] or r[9] or deadReason(r) then return {} end
return record(id, r)
`,
  (id: string) => [id]
)

/**
 * Calls in flight: extends the lease of each live credential to `leaseEnd`
 * (`until` > 0), or records a use (`until` = 0, a call's end). Returns nothing.
 */
export const inFlight = operation<number>()(
  "inFlight",
  `
local leaseEnd = tonumber(argv[${common + 1}])
for i = ${common + 2}, #argv do
  local id = argv[i]
  local r = read(id)
  if r[1] and not r[9] and not deadReason(r) then
    if leaseEnd > 0 then
      local l = tonumber(r[7])
      if not l or leaseEnd > l then
        r[7] = num(leaseEnd)
        save(id, r)
      end
    else
      use(id, r)
    end
  end
end
return 0
`,
  (leaseEnd: number, ids: ReadonlyArray<string>) => [leaseEnd, ...ids]
)

const operations = [resolve, issue, touch, revoke, revokeThread, revokeBatch, sweepBatch, list, get, inFlight] as const

const libraryBody = `${prelude}\n${
  operations.map((op) => `redis.register_function("NAME_${op.name}", function(_, args)\nsetup(args)\n${op.body}\nend)`)
    .join("\n")
}`

/**
 * The function library: named after a digest of its code, so replicas of
 * different versions on one Redis each find their own, and loading it again
 * is a no-op.
 */
export const libraryName = `mcpsr_${createHash("sha256").update(libraryBody).digest("hex").slice(0, 16)}`

/** The library's source, for `FUNCTION LOAD`. */
export const library = `#!lua name=${libraryName}\n${libraryBody.replaceAll("NAME_", `${libraryName}_`)}`

/** The name `FCALL` knows an operation by. */
export const functionName = (op: { readonly name: string }): string => `${libraryName}_${op.name}`
