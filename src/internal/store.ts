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
import { randomBase64Url } from "./entropy.ts"
import { byFirstCode, byTail, ShardedMap } from "./shardedMap.ts"

const credentialIdPrefix = "cred_"
const providerSessionIdPrefix = "psess_"

const emptyCapabilities: ReadonlyArray<string> = Object.freeze([])

/**
 * One live credential. A class with a fixed shape keeps V8's hidden class
 * stable and the per-credential footprint small; `expiresAt` is derived, not
 * stored, because it always equals `lastUsedAt + maxLifetime` under the cap.
 */
export class Entry {
  /** Neighbours in the thread's list, so thread-wide operations cost O(thread). */
  prev: Entry | undefined = undefined
  next: Entry | undefined = undefined
  removed = false
  constructor(
    readonly key: string,
    readonly credentialId: string,
    readonly providerSessionId: string,
    readonly threadId: string,
    readonly providerInstanceId: string,
    readonly capabilities: ReadonlyArray<string>,
    readonly issuedAt: number,
    public lastUsedAt: number
  ) {}
}

/** What made `issue` refuse, before any state changed. */
export type Refusal =
  | { readonly _tag: "RegistryFull"; readonly scope: "registry" | "thread"; readonly limit: number }

// A tombstone's deadline and reason are packed into one number: the reason in
// its low 3 bits.
const reasonCodes: ReadonlyArray<InvalidReason> = ["revoked", "idle", "expired"]
const tombstoneReason = (reason: RevocationReason): InvalidReason =>
  reason === "idle" || reason === "expired" ? reason : "revoked"

export class Store {
  // Sharded so that emptying them never rehashes a million entries at once.
  readonly byDigest = new ShardedMap<Entry>(byFirstCode)
  readonly byId = new ShardedMap<Entry>(byTail)
  readonly threads = new ShardedMap<Entry>(byTail)
  /** A remembered key's burial number: its place in the burial queue below. */
  readonly tombstones = new ShardedMap<number>(byFirstCode)
  // The burial queue, in burial order, which is deadline order: keys, and
  // their packed deadlines and reasons in an array V8 stores as unboxed
  // doubles. A packed value in the map itself is past the small-integer range,
  // so V8 boxed each one: a heap object per remembered token, promoted by the
  // million while a sweep buries a mass expiry. Eviction and pruning take from
  // the front in O(1): the first key of a Map is only found by stepping over
  // every slot deleted before it, which made each eviction O(maxTombstones)
  // once the cap was reached.
  private buriedKeys: Array<string> = []
  private buriedPacked: Array<number> = []
  /** The queue's oldest kept slot. */
  private buriedHead = 0
  /** The burial number of slot 0. */
  private buriedBase = 0
  /** Credentials reclaimed as a side effect of a lookup, waiting for their hooks. */
  reclaimed: Array<RevocationEvent> = []

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

  constructor(readonly config: Resolved) {}

  get size(): number {
    return this.byDigest.size
  }

  expiresAt(entry: Entry): number {
    return Math.min(entry.lastUsedAt + this.config.maxLifetimeMillis, entry.issuedAt + this.config.absoluteLifetimeMillis)
  }

  info(entry: Entry): CredentialInfo {
    const expiresAt = this.expiresAt(entry)
    return {
      credentialId: entry.credentialId,
      providerSessionId: entry.providerSessionId,
      threadId: entry.threadId,
      providerInstanceId: entry.providerInstanceId,
      capabilities: entry.capabilities,
      issuedAt: entry.issuedAt,
      lastUsedAt: entry.lastUsedAt,
      expiresAt,
      idleExpiresAt: Math.min(entry.lastUsedAt + this.config.idleTimeoutMillis, expiresAt)
    }
  }

  /**
   * Why the credential is dead at `now`, or `undefined` while it lives. The
   * reason is the deadline it crossed first, so a credential reclaimed long
   * after it went idle still leaves as `idle`.
   */
  deadReason(entry: Entry, now: number): "idle" | "expired" | undefined {
    const idleAt = entry.lastUsedAt + this.config.idleTimeoutMillis
    const expiresAt = this.expiresAt(entry)
    if (now <= idleAt && now <= expiresAt) return undefined
    return idleAt < expiresAt ? "idle" : "expired"
  }

  /** Looks a presented token up, sliding its expiry when it is live. */
  resolve(token: unknown, now: number): Entry | InvalidReason {
    if (typeof token !== "string") return this.count("malformed")
    // The length first, so a megabyte of input fails at once. Then one hash
    // serves twice: the checksum is the digest's first bits, and it covers
    // the prefix, so a malformed token is refused before any lookup.
    if (token.length !== BearerToken.length) return this.count(token.length === 0 ? "missing" : "malformed")
    const key = BearerToken.digest(token)
    if (!BearerToken.checksumMatches(token, key)) return this.count("malformed")
    const entry = this.byDigest.get(key)
    if (entry === undefined) return this.count(this.tombstone(key, now))
    const dead = this.deadReason(entry, now)
    if (dead !== undefined) {
      this.reclaimed.push(this.remove(entry, dead, now))
      return this.count(dead)
    }
    if (now > entry.lastUsedAt) entry.lastUsedAt = now
    this.resolvedTotal.ok++
    return entry
  }

  private count(reason: InvalidReason): InvalidReason {
    this.resolvedTotal[reason]++
    return reason
  }

  private tombstone(key: string, now: number): InvalidReason {
    const burial = this.tombstones.get(key)
    if (burial === undefined) return "unknown"
    const packed = this.buriedPacked[burial - this.buriedBase]!
    const code = packed % 8
    if ((packed - code) / 8 < now) return "unknown"
    return reasonCodes[code]!
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
    let live = 0
    let target: Entry | undefined
    for (let entry = this.threads.get(request.threadId); entry !== undefined;) {
      const next = entry.next
      const dead = this.deadReason(entry, now)
      if (dead !== undefined) {
        events.push(this.remove(entry, dead, now))
      } else {
        live++
        if (replace && target === undefined && entry.providerInstanceId === request.providerInstanceId) target = entry
      }
      entry = next
    }
    const freed = target === undefined ? 0 : 1
    if (live - freed >= this.config.maxCredentialsPerThread) {
      return { _tag: "RegistryFull", scope: "thread", limit: this.config.maxCredentialsPerThread }
    }
    if (this.byDigest.size - freed >= this.config.maxCredentials) {
      // Dead credentials the sweeper has not reached yet must not count
      // against the cap: reclaim them all, an O(n) pass paid only at the cap.
      for (const entry of this.byDigest.values()) {
        const dead = this.deadReason(entry, now)
        if (dead !== undefined) events.push(this.remove(entry, dead, now))
      }
      if (this.byDigest.size - freed >= this.config.maxCredentials) {
        return { _tag: "RegistryFull", scope: "registry", limit: this.config.maxCredentials }
      }
    }
    // Two digests of 256 random bits never meet; the check stays because the
    // probe warms the slot the insertion below writes. A tombstone with the
    // same key would be harmless: a lookup finds the live entry first.
    let minted = BearerToken.mintKeyed()
    while (this.byDigest.has(minted.key)) minted = BearerToken.mintKeyed()
    const { key, token } = minted
    let suffix = randomBase64Url(12)
    // Built once: the string the probe hashes is the one the index keeps.
    let credentialId = credentialIdPrefix + suffix
    while (this.byId.has(credentialId)) {
      suffix = randomBase64Url(12)
      credentialId = credentialIdPrefix + suffix
    }
    const capabilities = request.capabilities === undefined || request.capabilities.length === 0
      ? emptyCapabilities
      // `issue` validated a copy of the caller's array; freezing that copy is enough.
      : Object.freeze(request.capabilities)
    const entry = new Entry(
      key,
      credentialId,
      providerSessionIdPrefix + suffix,
      request.threadId,
      request.providerInstanceId,
      capabilities,
      now,
      now
    )
    if (target !== undefined) events.push(this.remove(target, "replaced", now))
    this.byDigest.set(key, entry)
    this.byId.set(entry.credentialId, entry)
    const head = this.threads.get(entry.threadId)
    if (head !== undefined) {
      head.prev = entry
      entry.next = head
    }
    this.threads.set(entry.threadId, entry)
    this.issuedTotal.value++
    return { entry, token }
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
    let touched = 0
    for (let entry = this.threads.get(threadId); entry !== undefined;) {
      const next = entry.next
      const dead = this.deadReason(entry, now)
      if (dead !== undefined) {
        events.push(this.remove(entry, dead, now))
      } else {
        if (now > entry.lastUsedAt) entry.lastUsedAt = now
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
    const out: Array<CredentialInfo> = []
    for (const entry of this.byDigest.values()) {
      if (this.deadReason(entry, now) === undefined) out.push(this.info(entry))
    }
    return out
  }

  /** Takes a credential out of every index and leaves a tombstone. */
  remove(entry: Entry, reason: RevocationReason, now: number): RevocationEvent {
    entry.removed = true
    this.byDigest.delete(entry.key)
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
    this.bury(entry.key, tombstoneReason(reason), now)
    return { credential: this.info(entry), reason }
  }

  private bury(key: string, reason: InvalidReason, now: number): void {
    if (this.tombstones.size >= this.config.maxTombstones) {
      while (this.buriedHead < this.buriedKeys.length && !this.forgetOldest()) {
        // A slot whose key was already forgotten: try the next oldest.
      }
    }
    this.tombstones.set(key, this.buriedBase + this.buriedKeys.length)
    this.buriedKeys.push(key)
    this.buriedPacked.push((now + this.config.tombstoneRetentionMillis) * 8 + reasonCodes.indexOf(reason))
    this.compactBuried()
  }

  /** Forgets tombstones past their retention: O(expired), oldest first. */
  pruneTombstones(now: number): void {
    while (this.buriedHead < this.buriedKeys.length) {
      const packed = this.buriedPacked[this.buriedHead]!
      if ((packed - (packed % 8)) / 8 >= now) break
      this.forgetOldest()
    }
    this.compactBuried()
  }

  /** Takes the oldest slot off the queue; whether it still held a tombstone. */
  private forgetOldest(): boolean {
    const key = this.buriedKeys[this.buriedHead]!
    const burial = this.buriedBase + this.buriedHead++
    // Only the tombstone this slot made: a key buried again since holds a later one.
    return this.tombstones.get(key) === burial && this.tombstones.delete(key)
  }

  // Drops the consumed front of the queue once it is most of it: amortized O(1).
  private compactBuried(): void {
    if (this.buriedHead >= 1024 && this.buriedHead * 2 >= this.buriedKeys.length) {
      this.buriedKeys = this.buriedKeys.slice(this.buriedHead)
      this.buriedPacked = this.buriedPacked.slice(this.buriedHead)
      this.buriedBase += this.buriedHead
      this.buriedHead = 0
    }
  }
}
