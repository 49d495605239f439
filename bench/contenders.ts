/**
 * What the registry's `resolve` is compared with, written from their
 * descriptions in issue 5. Each keeps only SHA-256 digests of the tokens, as
 * the registry does, and computes the digest of every presented token, so all
 * contenders pay for the same hash.
 *
 * - the floor: one `Map` lookup of the digest and one timestamp write, no
 *   Effect, no checks: what no design can beat;
 * - `lru-cache` with `ttl` and `updateAgeOnGet`: the common peer;
 * - the naive design: an immutable `Map` copied and pruned of dead entries on
 *   every call. A reference only, to show what O(n) per request costs.
 */
import { hash } from "node:crypto"
import { LRUCache } from "lru-cache"

/** The digest every contender computes: one-shot SHA-256, as a 32-character binary string. */
export const digest = (token: string): string => hash("sha256", token, "binary")

/** A resolver outside Effect: the credential's record for a live token, `undefined` otherwise. */
export interface PlainResolver {
  readonly resolve: (token: string) => unknown
}

interface Record {
  readonly credentialId: string
  lastUsedAt: number
}

/** A plain `Map` from digest to a mutable record. */
export const floor = (tokens: ReadonlyArray<string>): PlainResolver => {
  const map = new Map<string, Record>()
  tokens.forEach((token, i) => map.set(digest(token), { credentialId: `cred_${i}`, lastUsedAt: Date.now() }))
  return {
    resolve: (token) => {
      const record = map.get(digest(token))
      if (record !== undefined) record.lastUsedAt = Date.now()
      return record
    }
  }
}

/** `lru-cache` keyed by digest, entries living `idleMillis` past their last get. */
export const lruCache = (tokens: ReadonlyArray<string>, idleMillis: number): PlainResolver => {
  const cache = new LRUCache<string, Record>({ max: Math.max(tokens.length, 1), ttl: idleMillis, updateAgeOnGet: true })
  tokens.forEach((token, i) => cache.set(digest(token), { credentialId: `cred_${i}`, lastUsedAt: Date.now() }))
  return { resolve: (token) => cache.get(digest(token)) }
}

interface NaiveRecord {
  readonly credentialId: string
  readonly lastUsedAt: number
}

/**
 * The immutable design: every call builds the next `Map` from the current
 * one, leaving out dead entries and replacing the used one with an updated
 * copy.
 */
export const naive = (tokens: ReadonlyArray<string>, idleMillis: number): PlainResolver => {
  let state: ReadonlyMap<string, NaiveRecord> = new Map(
    tokens.map((token, i) => [digest(token), { credentialId: `cred_${i}`, lastUsedAt: Date.now() }])
  )
  return {
    resolve: (token) => {
      const key = digest(token)
      const now = Date.now()
      const next = new Map<string, NaiveRecord>()
      let found: NaiveRecord | undefined
      for (const [k, record] of state) {
        if (now - record.lastUsedAt > idleMillis) continue
        if (k === key) {
          found = { ...record, lastUsedAt: now }
          next.set(k, found)
        } else {
          next.set(k, record)
        }
      }
      state = next
      return found
    }
  }
}
