/**
 * The registry's synchronous core: indexes, lifetimes and tombstones.
 *
 * Everything here runs to completion without yielding, so each operation is
 * atomic with respect to every fiber: once a removal returns, no lookup can
 * find the credential again. The Effect service wraps it with time, hooks,
 * metrics and the sweeper.
 */
import * as BearerToken from "../BearerToken.ts"
import type { CredentialInfo, InvalidReason } from "../Credential.ts"
import type { Resolved } from "../RegistryConfig.ts"
import type { RevocationEvent, RevocationReason } from "../Revocation.ts"
import { DigestIndex } from "./digestIndex.ts"
import { randomBase64Url } from "./entropy.ts"
import { byFirstCode, byTail, ShardedMap } from "./shardedMap.ts"

const credentialIdPrefix = "cred_"
const providerSessionIdPrefix = "psess_"

const emptyCapabilities: ReadonlyArray<string> = Object.freeze([])

/**
 * One live credential. A class with a fixed shape keeps V8's hidden class
 * stable and the per-credential footprint small; `expiresAt` is derived, not
 * stored, because it always equals `lastUsedAt + maxLifetime` under the cap.
 *
 * Two clocks: `lastUsed` is wall time, for the lifetimes and every reported
 * figure; `lastUsedIdle` is the idle clock's reading at that use (awake time,
 * or wall time again under `idleClock: "wall"`). Wall times are kept relative
 * to the store's origin (see `Store.wallOrigin`).
 */
export class Entry {
  /** Neighbours in the thread's list, so thread-wide operations cost O(thread). */
  prev: Entry | undefined = undefined
  next: Entry | undefined = undefined
  /**
   * Calls in flight while it lives: while any is open it cannot go idle.
   * Once it left, -1 marks that a refusal of its token was logged (one line
   * per credential). One field for both keeps the entry at 13 fields, 64
   * bytes with V8's compressed pointers: one cache line on a lookup.
   */
  inFlight = 0
  /** Why it left, once it has: what a refusal's log line reports. */
  leftAs: RevocationReason | undefined = undefined
  constructor(
    readonly key: string,
    readonly credentialId: string,
    readonly providerSessionId: string,
    readonly threadId: string,
    readonly providerInstanceId: string,
    readonly capabilities: ReadonlyArray<string>,
    /** When it was issued, relative to the store's wall origin. */
    readonly issued: number,
    /** Its last use, relative to the store's wall origin. */
    public lastUsed: number,
    public lastUsedIdle: number
  ) {}

  /** Whether it left the registry. */
  get removed(): boolean {
    return this.leftAs !== undefined
  }

  /** Whether a refusal of its token was logged; only once it left. */
  get warned(): boolean {
    return this.inFlight < 0
  }
}

/** The random part of an id: base64url, so `_` can occur; never at its ends nor twice in a row. */
const randomIdSuffix = (): string => {
  let suffix = randomBase64Url(12)
  // Rejection keeps the draw uniform over the allowed strings; about one draw in five is redrawn.
  while (suffix.charCodeAt(0) === 95 || suffix.charCodeAt(suffix.length - 1) === 95 || suffix.includes("__")) {
    suffix = randomBase64Url(12)
  }
  return suffix
}

/** What made `issue` refuse, before any state changed. */
export type Refusal =
  | { readonly _tag: "RegistryFull"; readonly scope: "registry" | "thread"; readonly limit: number }

// A tombstone's deadline and reason are packed into one number: the reason in
// its low 3 bits.
const reasonCodes: ReadonlyArray<InvalidReason> = ["revoked", "idle", "expired"]
const tombstoneReason = (reason: RevocationReason): InvalidReason =>
  reason === "idle" || reason === "expired" ? reason : "revoked"

/**
 * How far ahead of its first reading a relative clock's origin is set: 2^30
 * ms, half the small-integer range, less a day for a clock set back.
 */
export const smallIntegerSpan = 2 ** 30 - 24 * 60 * 60 * 1000

/** Reads the idle clock, given the wall time of the same instant. */
export type IdleClockReader = (now: number) => number

const wallIdleClock: IdleClockReader = (now) => now

export class Store {
  // Sharded so that emptying them never rehashes a million entries at once.
  // `byId` holds every credential `byDigest` does and is the one iterated.
  readonly byDigest = new DigestIndex<Entry>()
  readonly byId = new ShardedMap<Entry>(byTail)
  readonly threads = new ShardedMap<Entry>(byTail)
  /** A remembered key's burial number: its place in the burial queue below. */
  readonly tombstones = new ShardedMap<number>(byFirstCode)
  // The burial queue, in burial order, which is deadline order: entries
  // (their keys, and what a refusal's log line needs), and their packed deadlines and reasons in an array V8 stores as unboxed
  // doubles. A packed value in the map itself is past the small-integer range,
  // so V8 boxed each one: a heap object per remembered token, promoted by the
  // million while a sweep buries a mass expiry. Eviction and pruning take from
  // the front in O(1): the first key of a Map is only found by stepping over
  // every slot deleted before it, which made each eviction O(maxTombstones)
  // once the cap was reached.
  private buriedEntries: Array<Entry> = []
  private buriedPacked: Array<number> = []
  /** The queue's oldest kept slot. */
  private buriedHead = 0
  /** The burial number of slot 0. */
  private buriedBase = 0
  /** Credentials reclaimed as a side effect of a lookup, waiting for their hooks. */
  reclaimed: Array<RevocationEvent> = []
  /** The idle clock; the wall clock itself unless the registry sets it. */
  idleClock: IdleClockReader = wallIdleClock
  /**
   * Called once per credential whose token is refused after it left (or as
   * it dies): the registry logs it. `reason` is what the caller is told.
   */
  onRefusedOnceValid: ((entry: Entry, reason: "revoked" | "idle" | "expired") => void) | undefined = undefined
  /**
   * Called when a token that was never valid is refused at or after
   * `neverValidDue` (wall time): the registry logs a summary and sets the next
   * due time, so a spray costs one comparison per token.
   */
  onRefusedNeverValid: ((now: number) => void) | undefined = undefined
  neverValidDue = Infinity
  // Lower bounds of the earliest deadline of any live credential, one per
  // clock, as of the last full scan at the registry cap. Uses only push
  // deadlines later, so until a clock passes its bound nothing can have died
  // and a refused `issue` need not scan again.
  private earliestExpiry = -Infinity
  private earliestIdle = -Infinity

  readonly issuedTotal = { value: 0 }
  readonly resolvedTotal: Record<"ok" | InvalidReason, number> = {
    ok: 0,
    missing: 0,
    malformed: 0,
    unknown: 0,
    revoked: 0,
    idle: 0,
    expired: 0
  }
  readonly revokedTotal: Record<RevocationReason, number> = {
    revoked: 0,
    "session-stopped": 0,
    replaced: 0,
    idle: 0,
    expired: 0,
    shutdown: 0
  }

  /**
   * Entries keep wall times relative to this instant, in whole milliseconds.
   * V8 stores a small integer in the object itself but any other number in a
   * heap object of its own, and an epoch-millisecond figure is past the
   * small-integer range: two boxed times made every lookup of a cold
   * credential two cache misses slower than it need be. Set at the first
   * issue, 2^30 ms less a day ahead of it, so relative times run up from
   * about -2^30 and stay small integers for the first 23 days; past that V8
   * boxes them again, which is slower and never wrong.
   */
  private wallOrigin = 0
  private originSet = false

  // The figures every lookup reads, as fields of the store itself: one load
  // each instead of two.
  private readonly idleTimeoutMillis: number
  private readonly maxLifetimeMillis: number
  private readonly absoluteLifetimeMillis: number
  private readonly slideOnUse: boolean

  constructor(readonly config: Resolved) {
    this.idleTimeoutMillis = config.idleTimeoutMillis
    this.maxLifetimeMillis = config.maxLifetimeMillis
    this.absoluteLifetimeMillis = config.absoluteLifetimeMillis
    this.slideOnUse = config.slideOnUse
  }

  get size(): number {
    return this.byDigest.size
  }

  /** When the credential was issued, in epoch milliseconds. */
  issuedAt(entry: Entry): number {
    return entry.issued + this.wallOrigin
  }

  expiresAt(entry: Entry): number {
    // Ternaries, not `Math.min`: outside optimized code V8 calls that as a
    // builtin, which cost about 90 instructions a call on every request.
    const sliding = entry.lastUsed + this.maxLifetimeMillis
    const absolute = entry.issued + this.absoluteLifetimeMillis
    return this.wallOrigin + (sliding < absolute ? sliding : absolute)
  }

  /** When the credential goes idle, in wall time at `now`; `Infinity` while a call is in flight. */
  idleAt(entry: Entry, now: number, idle: number): number {
    return entry.inFlight > 0 ? Infinity : now + (entry.lastUsedIdle + this.idleTimeoutMillis - idle)
  }

  info(entry: Entry, now: number, idle: number = this.idleClock(now)): CredentialInfo {
    const expiresAt = this.expiresAt(entry)
    const idleAt = this.idleAt(entry, now, idle)
    return {
      credentialId: entry.credentialId,
      providerSessionId: entry.providerSessionId,
      threadId: entry.threadId,
      providerInstanceId: entry.providerInstanceId,
      capabilities: entry.capabilities,
      issuedAt: entry.issued + this.wallOrigin,
      lastUsedAt: entry.lastUsed + this.wallOrigin,
      expiresAt,
      idleExpiresAt: idleAt < expiresAt ? idleAt : expiresAt
    }
  }

  /**
   * Why the credential is dead at `now`, or `undefined` while it lives. The
   * reason is the deadline it crossed first, so a credential reclaimed long
   * after it went idle still leaves as `idle`.
   */
  deadReason(entry: Entry, now: number, idle: number = this.idleClock(now)): "idle" | "expired" | undefined {
    const expiresAt = this.expiresAt(entry)
    if (entry.inFlight > 0) return now <= expiresAt ? undefined : "expired"
    const idleLeft = entry.lastUsedIdle + this.idleTimeoutMillis - idle
    if (idleLeft >= 0 && now <= expiresAt) return undefined
    // Both deadlines in wall time, to tell which came first.
    return now + idleLeft < expiresAt ? "idle" : "expired"
  }

  /** A use at `now`: restarts the idle clock and slides the expiry. */
  use(entry: Entry, now: number, idle: number): void {
    const used = now - this.wallOrigin
    if (used > entry.lastUsed) entry.lastUsed = used
    if (idle > entry.lastUsedIdle) entry.lastUsedIdle = idle
  }

  /**
   * Looks a presented token up. A live one is used (under `slideOnUse`);
   * `idle` is the idle clock at `now`, read by the caller once per call.
   */
  resolve(token: unknown, now: number, idle: number = this.idleClock(now)): Entry | InvalidReason {
    if (typeof token !== "string") return this.neverValid("malformed", now)
    // The length first, so a megabyte of input fails at once. The key covers
    // the whole token, so a token found is exact and a live lookup costs one
    // hash and no checksum test; only a token not held is checked further.
    if (token.length !== BearerToken.length) return this.neverValid(token.length === 0 ? "missing" : "malformed", now)
    const key = BearerToken.lookupKey(token)
    const entry = this.byDigest.get(key)
    if (entry === undefined) return this.tombstone(token, key, now)
    const dead = this.deadReason(entry, now, idle)
    if (dead !== undefined) {
      this.reclaimed.push(this.remove(entry, dead, now, idle))
      return this.onceValid(entry, dead)
    }
    if (this.slideOnUse) this.use(entry, now, idle)
    this.resolvedTotal.ok++
    return entry
  }

  /**
   * Whether `resolve` would find the token live at `now`, changing nothing:
   * no use, no reclaim, no count, no log line.
   */
  isLive(token: string, now: number, idle: number = this.idleClock(now)): boolean {
    if (token.length !== BearerToken.length) return false
    const entry = this.byDigest.get(BearerToken.lookupKey(token))
    return entry !== undefined && this.deadReason(entry, now, idle) === undefined
  }

  private neverValid(reason: "missing" | "malformed" | "unknown", now: number): InvalidReason {
    this.resolvedTotal[reason]++
    if (now >= this.neverValidDue) this.onRefusedNeverValid?.(now)
    return reason
  }

  private onceValid(entry: Entry, reason: "revoked" | "idle" | "expired"): InvalidReason {
    this.resolvedTotal[reason]++
    if (!entry.warned) {
      entry.inFlight = -1
      this.onRefusedOnceValid?.(entry, reason)
    }
    return reason
  }

  // Why a token the store does not hold is refused: a credential it
  // remembers, else `malformed` when the token's checksum disagrees (a second
  // hash, paid only here), else `unknown`. A remembered key is a whole issued
  // token, so its checksum holds.
  private tombstone(token: string, key: string, now: number): InvalidReason {
    const burial = this.tombstones.get(key)
    if (burial === undefined) {
      return this.neverValid(BearerToken.checksumMatches(token, BearerToken.digest(token)) ? "unknown" : "malformed", now)
    }
    const slot = burial - this.buriedBase
    const packed = this.buriedPacked[slot]!
    const code = packed % 8
    if ((packed - code) / 8 < now) return this.neverValid("unknown", now)
    return this.onceValid(this.buriedEntries[slot]!, reasonCodes[code] as "revoked" | "idle" | "expired")
  }

  /**
   * Mints and stores a credential. Dead credentials of the thread are reclaimed
   * first so they never count against its cap; the replaced one, if any, is
   * removed in the same synchronous step the new one is added in.
   */
  issue(
    request: {
      readonly threadId: string
      readonly providerInstanceId: string
      readonly capabilities?: ReadonlyArray<string> | undefined
      readonly replace?: boolean | undefined
    },
    now: number,
    events: Array<RevocationEvent>
  ): { readonly entry: Entry; readonly token: string } | Refusal {
    const replace = request.replace !== false
    const idle = this.idleClock(now)
    let live = 0
    // Every live credential of the pair is replaced, not only the newest: one
    // issued beside it with `replace: false` would otherwise outlive it.
    let targets: Array<Entry> | undefined
    for (let entry = this.threads.get(request.threadId); entry !== undefined;) {
      const next = entry.next
      const dead = this.deadReason(entry, now, idle)
      if (dead !== undefined) {
        events.push(this.remove(entry, dead, now, idle))
      } else {
        live++
        if (replace && entry.providerInstanceId === request.providerInstanceId) (targets ??= []).push(entry)
      }
      entry = next
    }
    const freed = targets === undefined ? 0 : targets.length
    if (live - freed >= this.config.maxCredentialsPerThread) {
      return { _tag: "RegistryFull", scope: "thread", limit: this.config.maxCredentialsPerThread }
    }
    if (this.byDigest.size - freed >= this.config.maxCredentials) {
      // Dead credentials the sweeper has not reached yet must not count
      // against the cap: reclaim them all, an O(n) pass paid only at the cap,
      // and only once something can have died since the last one, so a
      // caller retrying at the cap pays O(1) per refusal.
      if (now > this.earliestExpiry || idle > this.earliestIdle) this.reclaimAll(now, idle, events)
      if (this.byDigest.size - freed >= this.config.maxCredentials) {
        return { _tag: "RegistryFull", scope: "registry", limit: this.config.maxCredentials }
      }
    }
    // Two digests of 256 random bits never meet; the check stays because the
    // probe warms the slot the insertion below writes. A tombstone with the
    // same key would be harmless: a lookup finds the live entry first.
    let token = BearerToken.mint()
    let key = BearerToken.lookupKey(token)
    while (this.byDigest.has(key)) {
      token = BearerToken.mint()
      key = BearerToken.lookupKey(token)
    }
    let suffix = randomIdSuffix()
    // Built once: the string the probe hashes is the one the index keeps.
    let credentialId = credentialIdPrefix + suffix
    while (this.byId.has(credentialId)) {
      suffix = randomIdSuffix()
      credentialId = credentialIdPrefix + suffix
    }
    const capabilities = request.capabilities === undefined || request.capabilities.length === 0
      ? emptyCapabilities
      // `issue` validated a copy of the caller's array; freezing that copy is enough.
      : Object.freeze(request.capabilities)
    if (!this.originSet) {
      this.wallOrigin = now + smallIntegerSpan
      this.originSet = true
    }
    const entry = new Entry(
      key,
      credentialId,
      providerSessionIdPrefix + suffix,
      request.threadId,
      request.providerInstanceId,
      capabilities,
      now - this.wallOrigin,
      now - this.wallOrigin,
      idle
    )
    if (targets !== undefined) {
      for (const target of targets) events.push(this.remove(target, "replaced", now, idle))
    }
    this.byDigest.add(entry)
    this.byId.set(entry.credentialId, entry)
    const head = this.threads.get(entry.threadId)
    if (head !== undefined) {
      head.prev = entry
      entry.next = head
    }
    this.threads.set(entry.threadId, entry)
    this.issuedTotal.value++
    this.noteDeadlines(entry)
    return { entry, token }
  }

  /** Reclaims every dead credential and records the earliest deadline left. */
  private reclaimAll(now: number, idle: number, events: Array<RevocationEvent>): void {
    let earliestExpiry = Infinity
    let earliestIdle = Infinity
    for (const entry of this.byId.values()) {
      const dead = this.deadReason(entry, now, idle)
      if (dead !== undefined) {
        events.push(this.remove(entry, dead, now, idle))
        continue
      }
      const expiresAt = this.expiresAt(entry)
      if (expiresAt < earliestExpiry) earliestExpiry = expiresAt
      if (entry.inFlight === 0 && entry.lastUsedIdle + this.idleTimeoutMillis < earliestIdle) {
        earliestIdle = entry.lastUsedIdle + this.idleTimeoutMillis
      }
    }
    this.earliestExpiry = earliestExpiry
    this.earliestIdle = earliestIdle
  }

  /** Keeps the bounds of the last scan true for a credential whose deadlines may now come sooner. */
  private noteDeadlines(entry: Entry): void {
    const expiresAt = this.expiresAt(entry)
    if (expiresAt < this.earliestExpiry) this.earliestExpiry = expiresAt
    if (entry.inFlight === 0 && entry.lastUsedIdle + this.idleTimeoutMillis < this.earliestIdle) {
      this.earliestIdle = entry.lastUsedIdle + this.idleTimeoutMillis
    }
  }

  /**
   * Marks one call of a live credential in flight; returns the function that
   * ends it, or `undefined` when there is nothing to mark (unknown, dead, or
   * `slideOnUse: false`). The end is a use at that instant, unless a lifetime
   * cap passed meanwhile: a call never revives its credential.
   */
  beginCall(credentialId: unknown, now: number, clockNow: () => number): (() => void) | undefined {
    if (!this.slideOnUse) return undefined
    const entry = this.byCredentialId(credentialId)
    if (entry === undefined || this.deadReason(entry, now) !== undefined) return undefined
    return this.beginCallOn(entry, clockNow)
  }

  /**
   * `beginCall` on a credential the caller has just found live (a lookup
   * that begins its call at once), without finding it again.
   */
  beginCallOn(entry: Entry, clockNow: () => number): (() => void) | undefined {
    if (!this.slideOnUse) return undefined
    entry.inFlight++
    let open = true
    return () => {
      if (!open) return
      open = false
      if (entry.removed) return
      entry.inFlight--
      const end = clockNow()
      const idle = this.idleClock(end)
      // The idle clock restarts either way: a call that outlived a lifetime
      // leaves `expired`, never `idle` of the time it was in flight.
      if (idle > entry.lastUsedIdle) entry.lastUsedIdle = idle
      if (end <= this.expiresAt(entry) && end - this.wallOrigin > entry.lastUsed) entry.lastUsed = end - this.wallOrigin
      this.noteDeadlines(entry)
    }
  }

  /** The live or not-yet-reclaimed credential with this id. */
  byCredentialId(credentialId: unknown): Entry | undefined {
    return typeof credentialId === "string" ? this.byId.get(credentialId) : undefined
  }

  /** Provider session ids share their random part with the credential id. */
  byProviderSessionId(providerSessionId: unknown): Entry | undefined {
    if (typeof providerSessionId !== "string" || !providerSessionId.startsWith(providerSessionIdPrefix)) return undefined
    const entry = this.byId.get(credentialIdPrefix + providerSessionId.slice(providerSessionIdPrefix.length))
    return entry !== undefined && entry.providerSessionId === providerSessionId ? entry : undefined
  }

  /**
   * Removes one credential. A credential that already died of time leaves
   * with that reason, whatever the caller asked for; `live` says which.
   */
  revoke(
    entry: Entry,
    reason: RevocationReason,
    now: number,
    events: Array<RevocationEvent>
  ): boolean {
    const dead = this.deadReason(entry, now)
    events.push(this.remove(entry, dead ?? reason, now))
    return dead === undefined
  }

  /** Uses every live credential of a thread; reclaims its dead ones. */
  touch(threadId: string, now: number, events: Array<RevocationEvent>): number {
    const idle = this.idleClock(now)
    let touched = 0
    for (let entry = this.threads.get(threadId); entry !== undefined;) {
      const next = entry.next
      const dead = this.deadReason(entry, now, idle)
      if (dead !== undefined) {
        events.push(this.remove(entry, dead, now, idle))
      } else {
        this.use(entry, now, idle)
        touched++
      }
      entry = next
    }
    return touched
  }

  /** Removes every credential of a thread; returns how many were live. */
  revokeThread(threadId: string, reason: RevocationReason, now: number, events: Array<RevocationEvent>): number {
    let revoked = 0
    for (let entry = this.threads.get(threadId); entry !== undefined;) {
      const next = entry.next
      if (this.revoke(entry, reason, now, events)) revoked++
      entry = next
    }
    return revoked
  }

  list(now: number): Array<CredentialInfo> {
    const idle = this.idleClock(now)
    const out: Array<CredentialInfo> = []
    for (const entry of this.byId.values()) {
      if (this.deadReason(entry, now, idle) === undefined) out.push(this.info(entry, now, idle))
    }
    return out
  }

  /** Takes a credential out of every index and leaves a tombstone. */
  remove(entry: Entry, reason: RevocationReason, now: number, idle: number = this.idleClock(now)): RevocationEvent {
    entry.leftAs = reason
    this.byDigest.delete(entry)
    this.byId.delete(entry.credentialId)
    if (entry.prev !== undefined) {
      entry.prev.next = entry.next
    } else if (entry.next !== undefined) {
      this.threads.set(entry.threadId, entry.next)
    } else {
      this.threads.delete(entry.threadId)
    }
    if (entry.next !== undefined) entry.next.prev = entry.prev
    entry.prev = undefined
    entry.next = undefined
    this.revokedTotal[reason]++
    this.bury(entry, tombstoneReason(reason), now)
    const credential = this.info(entry, now, idle)
    // Calls still open end as no-ops now; the field goes on to mark the log line.
    entry.inFlight = 0
    return { credential, reason }
  }

  private bury(entry: Entry, reason: InvalidReason, now: number): void {
    if (this.tombstones.size >= this.config.maxTombstones) {
      while (this.buriedHead < this.buriedEntries.length && !this.forgetOldest()) {
        // A slot whose key was already forgotten: try the next oldest.
      }
    }
    this.tombstones.set(entry.key, this.buriedBase + this.buriedEntries.length)
    this.buriedEntries.push(entry)
    this.buriedPacked.push((now + this.config.tombstoneRetentionMillis) * 8 + reasonCodes.indexOf(reason))
    this.compactBuried()
  }

  /** Forgets tombstones past their retention: O(expired), oldest first. */
  pruneTombstones(now: number): void {
    while (this.buriedHead < this.buriedEntries.length) {
      const packed = this.buriedPacked[this.buriedHead]!
      if ((packed - (packed % 8)) / 8 >= now) break
      this.forgetOldest()
    }
    this.compactBuried()
  }

  /** Takes the oldest slot off the queue; whether it still held a tombstone. */
  private forgetOldest(): boolean {
    const key = this.buriedEntries[this.buriedHead]!.key
    const burial = this.buriedBase + this.buriedHead++
    // Only the tombstone this slot made: a key buried again since holds a later one.
    return this.tombstones.get(key) === burial && this.tombstones.delete(key)
  }

  // Drops the consumed front of the queue once it is most of it: amortized O(1).
  private compactBuried(): void {
    if (this.buriedHead >= 1024 && this.buriedHead * 2 >= this.buriedEntries.length) {
      this.buriedEntries = this.buriedEntries.slice(this.buriedHead)
      this.buriedPacked = this.buriedPacked.slice(this.buriedHead)
      this.buriedBase += this.buriedHead
      this.buriedHead = 0
    }
  }
}
