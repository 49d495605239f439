/**
 * The Redis store's Lua scripts: one per registry operation, each atomic.
 *
 * Layout under a prefix `P` (every key shares the hash tag `{P}`, so a
 * registry lives in one cluster slot):
 *
 * - `{P}:c:<digest>`: a hash per credential (id, provider session id, thread,
 *   provider instance, capabilities as JSON, issuedAt, lastUsedAt, lease);
 *   the digest is the token's SHA-256 in base64url, never the token;
 * - `{P}:i:<credentialId>`: the digest of that credential;
 * - `{P}:t:<threadId>`: the set of a thread's digests;
 * - `{P}:d`: the deadline index, a sorted set of digests by the instant they
 *   die unless used, so a sweep pops what is due in O(due);
 * - `{P}:x`: tombstones, a sorted set of digests by `retentionEnd * 8 + reason`,
 *   and `{P}:q`, the same digests in burial order, to forget the oldest first;
 * - channel `{P}:events`: every removal, published by the script that made it.
 *
 * Every key carries a TTL of its credential's deadline plus the tombstone
 * retention, so Redis forgets a credential even if every replica is gone.
 * Time is the registry's `now`, passed in, never Redis `TIME`, and TTLs are
 * relative to it, so a registry on a `TestClock` stays consistent.
 */
import * as Redis from "effect/persistence/Redis"

/** The fields of a credential as the scripts return them. */
export type RecordFields = readonly [
  credentialId: string,
  providerSessionId: string,
  threadId: string,
  providerInstanceId: string,
  capabilities: string,
  issuedAt: string,
  lastUsedAt: string,
  lease: string | null
]

/** A removal: its reason, then the credential's fields. */
export type RemovedFields = readonly [reason: string, ...RecordFields]

/**
 * The arguments every script starts with, in this order: the key prefix
 * (`{P}:`), now, idle timeout, max lifetime, absolute lifetime (-1: none),
 * tombstone retention, max tombstones (-1: none), and this replica's id.
 */
export type Common = readonly [string, number, number, number, number, number, number, string]

const common = 8

// Shared by every script. `false` is how Lua's `redis.call` says nil.
const prelude = `
local base = ARGV[1]
local now = tonumber(ARGV[2])
local idleMs = tonumber(ARGV[3])
local maxLife = tonumber(ARGV[4])
local absolute = tonumber(ARGV[5])
local retention = tonumber(ARGV[6])
local maxTomb = tonumber(ARGV[7])
local replica = ARGV[8]
local dk = base .. "d"
local xk = base .. "x"
local events = {}
local fields = { "i", "s", "t", "p", "c", "a", "u", "l" }

local function num(x) return string.format("%.0f", x) end

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
  local a, u, l = tonumber(r[6]), tonumber(r[7]), tonumber(r[8])
  local e = expiresAt(a, u)
  local i = idleAt(u, l)
  if now <= i and now <= e then return false end
  if i < e then return "idle" end
  return "expired"
end

local function deadlineOf(r)
  local a, u, l = tonumber(r[6]), tonumber(r[7]), tonumber(r[8])
  return math.min(expiresAt(a, u), idleAt(u, l))
end

local function ttlOf(deadline)
  local t = math.floor(deadline - now + retention)
  if t < 1 then t = 1 end
  return t
end

-- Lengthens a key's TTL to at least ms; a key without one gets it. Shared
-- keys get an eighth more, so most uses find it long enough and skip the write.
local function extend(key, ms)
  local t = redis.call("PTTL", key)
  if t == -2 or (t >= 0 and t >= ms) then return end
  redis.call("PEXPIRE", key, ms + math.floor(ms / 8))
end

-- The burial queue: digests in burial order, so the oldest is forgotten
-- first even among tombstones of one instant (a sorted set breaks ties by name).
local qk = base .. "q"

local function bury(digest, reason)
  local code = 0
  if reason == "idle" then code = 1 elseif reason == "expired" then code = 2 end
  if maxTomb >= 0 and not redis.call("ZSCORE", xk, digest) then
    while redis.call("ZCARD", xk) >= maxTomb do
      local oldest = redis.call("LPOP", qk)
      if not oldest then
        redis.call("ZPOPMIN", xk)
      else
        redis.call("ZREM", xk, oldest)
      end
    end
  end
  redis.call("ZADD", xk, num((now + retention) * 8 + code), digest)
  redis.call("RPUSH", qk, digest)
  extend(xk, retention)
  extend(qk, retention)
end

-- Drops forgotten tombstones from the front of the burial queue.
local function pruneQueue(limit)
  for _ = 1, limit do
    local head = redis.call("LINDEX", qk, 0)
    if not head then return end
    local s = redis.call("ZSCORE", xk, head)
    if s and (tonumber(s) - tonumber(s) % 8) / 8 >= now then return end
    redis.call("LPOP", qk)
  end
end

local function read(digest)
  return redis.call("HMGET", base .. "c:" .. digest, unpack(fields))
end

local function remove(digest, r, reason)
  redis.call("DEL", base .. "c:" .. digest, base .. "i:" .. r[1])
  redis.call("SREM", base .. "t:" .. r[3], digest)
  redis.call("ZREM", dk, digest)
  bury(digest, reason)
  local ev = { reason, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] }
  events[#events + 1] = ev
  return ev
end

-- Revokes one member of an index for reason, or for the deadline it
-- already crossed: 1 if it was live. A member whose hash is gone (its TTL ran
-- out) is only dropped from the index, with staleCmd (SREM or ZREM).
local function revokeMember(digest, reason, staleCmd, staleKey)
  local r = read(digest)
  if not r[1] then
    redis.call(staleCmd, staleKey, digest)
    return 0
  end
  local dead = deadReason(r)
  remove(digest, r, dead or reason)
  if dead then return 0 end
  return 1
end

-- Records a use or a lease: the deadline index and every TTL follow.
local function save(digest, r)
  local deadline = deadlineOf(r)
  local ttl = ttlOf(deadline)
  local ck = base .. "c:" .. digest
  redis.call("ZADD", dk, num(deadline), digest)
  redis.call("PEXPIRE", ck, ttl)
  redis.call("PEXPIRE", base .. "i:" .. r[1], ttl)
  extend(base .. "t:" .. r[3], ttl)
  extend(dk, ttl)
end

local function use(digest, r)
  local u = tonumber(r[7])
  if now > u then
    r[7] = num(now)
    redis.call("HSET", base .. "c:" .. digest, "u", r[7])
    save(digest, r)
  end
end

-- One message per script, so a batch of removals costs one publish.
local function publish()
  if #events > 0 then redis.call("PUBLISH", base .. "events", cjson.encode({ replica, events })) end
end

local function live()
  return redis.call("ZCOUNT", dk, num(now), "+inf")
end
`

const script = <Params extends ReadonlyArray<any>>(
  lua: string,
  f: (...params: Params) => ReadonlyArray<unknown>
) => Redis.script((common: Common, ...params: Params) => [...common, ...f(...params)], { numberOfKeys: 0, lua: prelude + lua })

/** `resolve`: `["ok", ...fields]`, `[deadReason, removed]` or `[tombstoneReason]`. */
export const resolve = script(
  `
local digest = ARGV[${common + 1}]
local r = read(digest)
if not r[1] then
  local s = redis.call("ZSCORE", xk, digest)
  if not s then return { "unknown" } end
  s = tonumber(s)
  local code = s % 8
  if (s - code) / 8 < now then return { "unknown" } end
  if code == 1 then return { "idle" } elseif code == 2 then return { "expired" } end
  return { "revoked" }
end
local dead = deadReason(r)
if dead then
  local ev = remove(digest, r, dead)
  publish()
  return { dead, ev }
end
if ARGV[${common + 2}] == "1" then use(digest, r) end
return { "ok", r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] }
`,
  (digest: string, slide: boolean) => [digest, slide ? "1" : "0"]
).withReturnType<ReadonlyArray<unknown>>()

/**
 * `issue`: `["ok", live, removed]`, `["thread" | "registry", live, removed]`
 * or `["collision"]` (a digest or id already taken: mint again).
 */
export const issue = script(
  `
local digest, id, psess, thread, provider, caps = ARGV[${common + 1}], ARGV[${common + 2}], ARGV[${common + 3}], ARGV[${
    common + 4
  }], ARGV[${common + 5}], ARGV[${common + 6}]
local replace = ARGV[${common + 7}] == "1"
local maxThread, maxAll = tonumber(ARGV[${common + 8}]), tonumber(ARGV[${common + 9}])
local ck, ik, tk = base .. "c:" .. digest, base .. "i:" .. id, base .. "t:" .. thread
if redis.call("EXISTS", ck) == 1 or redis.call("EXISTS", ik) == 1 then return { "collision" } end
local count = 0
local targets = {}
for _, m in ipairs(redis.call("SMEMBERS", tk)) do
  local r = read(m)
  if not r[1] then
    redis.call("SREM", tk, m)
  else
    local dead = deadReason(r)
    if dead then
      remove(m, r, dead)
    else
      count = count + 1
      if replace and r[4] == provider then targets[#targets + 1] = { m, r } end
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
    if not r[1] then
      redis.call("ZREM", dk, m)
    else
      local dead = deadReason(r)
      if dead then remove(m, r, dead) end
    end
  end
  if redis.call("ZCARD", dk) - freed >= maxAll then
    publish()
    return { "registry", live(), events }
  end
end
for _, t in ipairs(targets) do remove(t[1], t[2], "replaced") end
local stamp = num(now)
redis.call("HSET", ck, "i", id, "s", psess, "t", thread, "p", provider, "c", caps, "a", stamp, "u", stamp)
redis.call("SET", ik, digest)
redis.call("SADD", tk, digest)
save(digest, { id, psess, thread, provider, caps, stamp, stamp, false })
publish()
return { "ok", live(), events }
`,
  (request: {
    readonly digest: string
    readonly credentialId: string
    readonly providerSessionId: string
    readonly threadId: string
    readonly providerInstanceId: string
    readonly capabilities: string
    readonly replace: boolean
    readonly maxPerThread: number
    readonly maxCredentials: number
  }) => [
    request.digest,
    request.credentialId,
    request.providerSessionId,
    request.threadId,
    request.providerInstanceId,
    request.capabilities,
    request.replace ? "1" : "0",
    request.maxPerThread,
    request.maxCredentials
  ]
).withReturnType<ReadonlyArray<unknown>>()

/** `touch`: `[touched, live, removed]`. */
export const touch = script(
  `
local tk = base .. "t:" .. ARGV[${common + 1}]
local count = 0
for _, m in ipairs(redis.call("SMEMBERS", tk)) do
  local r = read(m)
  if not r[1] then
    redis.call("SREM", tk, m)
  else
    local dead = deadReason(r)
    if dead then remove(m, r, dead) else use(m, r); count = count + 1 end
  end
end
publish()
return { count, live(), events }
`,
  (threadId: string) => [threadId]
).withReturnType<ReadonlyArray<unknown>>()

/**
 * `revoke` and `revokeProviderSession`: `[wasLive, live, removed]`. With a
 * provider session id, only a credential of that session is revoked.
 */
export const revoke = script(
  `
local id, reason, psess = ARGV[${common + 1}], ARGV[${common + 2}], ARGV[${common + 3}]
local ik = base .. "i:" .. id
local digest = redis.call("GET", ik)
if not digest then return { 0, live(), events } end
local r = read(digest)
if not r[1] then
  redis.call("DEL", ik)
  return { 0, live(), events }
end
if psess ~= "" and r[2] ~= psess then return { 0, live(), events } end
local dead = deadReason(r)
remove(digest, r, dead or reason)
publish()
if dead then return { 0, live(), events } end
return { 1, live(), events }
`,
  (credentialId: string, reason: string, providerSessionId: string) => [credentialId, reason, providerSessionId]
).withReturnType<ReadonlyArray<unknown>>()

/** `revokeThread`: `[wereLive, live, removed]`. */
export const revokeThread = script(
  `
local tk, reason = base .. "t:" .. ARGV[${common + 1}], ARGV[${common + 2}]
local count = 0
for _, m in ipairs(redis.call("SMEMBERS", tk)) do
  count = count + revokeMember(m, reason, "SREM", tk)
end
publish()
return { count, live(), events }
`,
  (threadId: string, reason: string) => [threadId, reason]
).withReturnType<ReadonlyArray<unknown>>()

/** One batch of `revokeAll`: `[wereLive, more, live, removed]`. */
export const revokeBatch = script(
  `
local reason, limit = ARGV[${common + 1}], tonumber(ARGV[${common + 2}])
local count = 0
for _, m in ipairs(redis.call("ZRANGE", dk, 0, limit - 1)) do
  count = count + revokeMember(m, reason, "ZREM", dk)
end
publish()
return { count, redis.call("ZCARD", dk), live(), events }
`,
  (reason: string, limit: number) => [reason, limit]
).withReturnType<ReadonlyArray<unknown>>()

/** One batch of a sweep: pops what is due, prunes old tombstones: `[more, live, removed]`. */
export const sweepBatch = script(
  `
local limit = tonumber(ARGV[${common + 1}])
local due = redis.call("ZRANGEBYSCORE", dk, "-inf", "(" .. num(now), "LIMIT", 0, limit)
for _, m in ipairs(due) do
  local r = read(m)
  if not r[1] then
    redis.call("ZREM", dk, m)
  else
    local dead = deadReason(r)
    if dead then
      remove(m, r, dead)
    else
      save(m, r)
    end
  end
end
redis.call("ZREMRANGEBYSCORE", xk, "-inf", "(" .. num(now * 8))
pruneQueue(limit)
publish()
local more = 0
if #due == limit then more = 1 end
return { more, live(), events }
`,
  (limit: number) => [limit]
).withReturnType<ReadonlyArray<unknown>>()

/** `list`, one page of the deadline index from `offset`: `[live, ...fields]`. */
export const list = script(
  `
local offset, limit = tonumber(ARGV[${common + 1}]), tonumber(ARGV[${common + 2}])
local out = { live() }
for _, m in ipairs(redis.call("ZRANGEBYSCORE", dk, num(now), "+inf", "LIMIT", offset, limit)) do
  local r = read(m)
  if r[1] and not deadReason(r) then out[#out + 1] = r end
end
return out
`,
  (offset: number, limit: number) => [offset, limit]
).withReturnType<ReadonlyArray<unknown>>()

/** `get`: the fields of a live credential, or an empty array. Not a use. */
export const get = script(
  `
local digest = redis.call("GET", base .. "i:" .. ARGV[${common + 1}])
if not digest then return {} end
local r = read(digest)
if not r[1] or deadReason(r) then return {} end
return r
`,
  (credentialId: string) => [credentialId]
).withReturnType<ReadonlyArray<unknown>>()

/**
 * Calls in flight: extends the lease of each live credential to `leaseEnd`
 * (`until` > 0), or records a use (`until` = 0, a call's end). Returns nothing.
 */
export const inFlight = script(
  `
local leaseEnd = tonumber(ARGV[${common + 1}])
for i = ${common + 2}, #ARGV do
  local digest = redis.call("GET", base .. "i:" .. ARGV[i])
  if digest then
    local r = read(digest)
    if r[1] and not deadReason(r) then
      if leaseEnd > 0 then
        local l = tonumber(r[8])
        if not l or leaseEnd > l then
          r[8] = num(leaseEnd)
          redis.call("HSET", base .. "c:" .. digest, "l", r[8])
          save(digest, r)
        end
      else
        use(digest, r)
      end
    end
  end
end
return 0
`,
  (leaseEnd: number, credentialIds: ReadonlyArray<string>) => [leaseEnd, ...credentialIds]
).withReturnType<number>()
