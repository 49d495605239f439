import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { InvalidReason } from "../../src/Credential.ts"
import { Store } from "../../src/internal/store.ts"
import * as RegistryConfig from "../../src/RegistryConfig.ts"
import type { RevocationEvent, RevocationReason } from "../../src/Revocation.ts"

const hour = 3_600_000

/** A store holding `count` credentials, each on its own thread, and their tokens. */
const filled = (count: number, options: RegistryConfig.Options) => {
  const store = new Store(Effect.runSync(RegistryConfig.resolve({ maxCredentials: count, ...options })))
  const issued = Array.from({ length: count }, (_, i) => {
    const result = store.issue({ threadId: `t${i}`, providerInstanceId: "p" }, 0, [])
    if ("_tag" in result) throw new Error("refused")
    return result
  })
  return { store, issued }
}

describe("Store tombstones", () => {
  it("remember the newest up to the cap, through many compactions of the burial queue", () => {
    const count = 5_000
    const cap = 1_500
    const { issued, store } = filled(count, { maxTombstones: cap, tombstoneRetention: "1 hour" })
    const reasons: ReadonlyArray<RevocationReason> = ["revoked", "session-stopped", "replaced", "shutdown"]
    const events: Array<RevocationEvent> = []
    // Buried one millisecond apart, so burial order is deadline order.
    issued.forEach(({ entry }, i) => store.revoke(entry, reasons[i % reasons.length]!, 1 + i, events))
    assert.strictEqual(events.length, count)
    assert.strictEqual(store.tombstones.size, cap)
    const now = count + 1
    const seen = issued.map(({ token }) => store.resolve(token, now) as InvalidReason)
    for (let i = 0; i < count; i++) assert.strictEqual(seen[i], i < count - cap ? "unknown" : "revoked", `token ${i}`)

    // Past the retention of the oldest 500 kept: those are forgotten, the rest stay.
    store.pruneTombstones(count - cap + 500 + hour + 1)
    assert.strictEqual(store.tombstones.size, cap - 500)
    const later = count - cap + 501 + hour
    for (let i = count - cap; i < count; i++) {
      const expected = i < count - cap + 500 ? "unknown" : "revoked"
      assert.strictEqual(store.resolve(issued[i]!.token, later), expected, `token ${i}`)
    }
  })

  it("keep the reason each credential died of", () => {
    const { issued, store } = filled(3, { idleTimeout: "10 minutes", tombstoneRetention: "1 day" })
    store.revoke(issued[0]!.entry, "revoked", 1, [])
    // Found dead of idleness by a lookup, and of the lifetime cap by a sweep-like removal.
    assert.strictEqual(store.resolve(issued[1]!.token, 11 * 60_000), "idle")
    store.remove(issued[2]!.entry, "expired", 2 * hour)
    assert.deepStrictEqual(
      issued.map(({ token }) => store.resolve(token, 2 * hour)),
      ["revoked", "idle", "expired"]
    )
  })
})

describe("Store at maxCredentials", () => {
  it("rescans for dead credentials only once something can have died since the last scan", () => {
    const count = 2_000
    const { issued, store } = filled(count, { idleTimeout: "10 minutes", maxLifetime: "1 hour" })
    let examined = 0
    const deadReason = store.deadReason.bind(store)
    store.deadReason = (entry, now, idle) => {
      examined++
      return deadReason(entry, now, idle)
    }
    const refusedAt = (now: number, attempts: number) => {
      for (let i = 0; i < attempts; i++) {
        const result = store.issue({ threadId: `new-${i}`, providerInstanceId: "p" }, now, [])
        assert.isTrue("_tag" in result, "issued past the cap")
      }
    }
    // The first refusal scans every credential; the next thousand scan nothing.
    refusedAt(1, 1)
    assert.strictEqual(examined, count)
    refusedAt(2, 1_000)
    assert.strictEqual(examined, count)
    // Uses push every deadline later: still nothing can have died.
    store.resolve(issued[0]!.token, 60_000)
    store.touch("t1", 60_000, [])
    refusedAt(9 * 60_000, 1_000)
    assert.strictEqual(examined, count + 2)

    // Past the earliest idle deadline a scan runs again, and frees the dead.
    const events: Array<RevocationEvent> = []
    const result = store.issue({ threadId: "after", providerInstanceId: "p" }, 10 * 60_000 + 1, events)
    assert.isFalse("_tag" in result)
    assert.strictEqual(events.length, count - 2)
    assert.isTrue(events.every((event) => event.reason === "idle"))
  })

  it("a call that ends counts: its new idle deadline can come before the last scan's earliest", () => {
    const { issued, store } = filled(2, { idleTimeout: "10 minutes", maxLifetime: "1 hour" })
    const [a, b] = issued
    let now = 0
    const endA = store.beginCall(a!.entry.credentialId, now, () => now)!
    const endB = store.beginCall(b!.entry.credentialId, now, () => now)!
    // Both in flight: nothing can go idle, so the earliest deadline is the lifetime.
    assert.isTrue("_tag" in store.issue({ threadId: "x", providerInstanceId: "p" }, 1, []))
    now = 5 * 60_000
    endA()
    endB()
    const events: Array<RevocationEvent> = []
    assert.isFalse("_tag" in store.issue({ threadId: "x", providerInstanceId: "p" }, 15 * 60_000 + 1, events))
    assert.strictEqual(events.length, 2)
  })
})

describe("Store lookup by the whole token", () => {
  // The key covers every character, so neither `resolve` nor `isLive` (which
  // the guards ask before reading a body) tests the checksum of a token it
  // holds: a near miss must fail on the key alone.
  const oneOff = (token: string, at: number, by: string) => token.slice(0, at) + by + token.slice(at + 1)
  const positions = [0, 5, 6, 30, 48, 49, 50, 51, 52, 53, 54]

  it("holds only the exact token: any changed character is not live and reads malformed", () => {
    const a = filled(2, { idleTimeout: "1 hour", maxLifetime: "2 hours" })
    // Used half-way, so its lifetime cap comes before its idle deadline.
    const b = filled(1, { idleTimeout: "1 hour", maxLifetime: "1 hour", absoluteLifetime: "1 hour" })
    b.store.use(b.issued[0]!.entry, hour / 2, hour / 2)
    const [live, idle] = a.issued.map(({ token }) => token)
    const expired = b.issued[0]!.token
    assert.isTrue(a.store.isLive(live!, 1))
    assert.notStrictEqual(typeof a.store.resolve(live!, 1), "string")
    // Idle and expired, each refused with its reason first.
    assert.strictEqual(a.store.resolve(idle!, hour + 2), "idle")
    assert.strictEqual(b.store.resolve(expired, 2 * hour), "expired")
    const cases = [[a.store, live!, 2], [a.store, idle!, hour + 3], [b.store, expired, 2 * hour + 1]] as const
    for (const [store, token, now] of cases) {
      for (const at of positions) {
        // Another base64url character, a non-ASCII one and a lone surrogate.
        for (const by of [token[at] === "A" ? "B" : "A", "é", "\ud800"]) {
          const changed = oneOff(token, at, by)
          assert.strictEqual(changed.length, token.length)
          assert.isFalse(store.isLive(changed, now), `isLive at ${at}`)
          assert.strictEqual(store.resolve(changed, now), "malformed", `resolve at ${at}`)
        }
      }
    }
    // The near misses changed nothing.
    assert.isTrue(a.store.isLive(live!, 2))
    assert.strictEqual(a.store.resolve(idle!, hour + 4), "idle")
    assert.strictEqual(b.store.resolve(expired, 2 * hour + 2), "expired")
  })
})

describe("Store lookups", () => {
  it("refuse a token of the right length outside ASCII as malformed", () => {
    const { issued, store } = filled(10, {})
    for (const { token } of issued) {
      for (const odd of ["é", "\u0100", "中", "\ud800"]) {
        const altered = token.slice(0, -1) + odd
        assert.strictEqual(altered.length, token.length)
        assert.strictEqual(store.resolve(altered, 1), "malformed")
        assert.isFalse(store.isLive(altered, 1))
      }
      assert.notStrictEqual(typeof store.resolve(token, 1), "string")
      assert.isTrue(store.isLive(token, 1))
    }
  })
})
