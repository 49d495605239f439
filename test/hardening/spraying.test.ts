/**
 * Token spraying at the registry: 100,000 wrong tokens (garbage, 64 KB
 * strings, well-formed strangers, tokens one character off, revoked tokens)
 * are all refused, change nothing, leave every index and the tombstones at
 * the size they had, and each costs a constant number of map lookups whether
 * the registry holds one thousand credentials or twenty thousand. Asserted on
 * counts and sizes, never on timings.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import { BearerToken, McpSessionRegistry, RegistryConfig } from "../../src/index.ts"
import { DigestIndex } from "../../src/internal/digestIndex.ts"
import { type Entry, Store } from "../../src/internal/store.ts"
import { metricValue, recorder, seeded } from "./support.ts"

const sprayCount = 100_000
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
const noise = alphabet + " \t\0é中😀=+/.:;\"'\\"

/** A reproducible stream of wrong tokens, built around some real ones. */
const sprayer = (seed: number, live: ReadonlyArray<string>, revoked: ReadonlyArray<string>) => {
  const random = seeded(seed)
  const chars = (n: number, from: string) => {
    let out = ""
    for (let i = 0; i < n; i++) out += from[random.int(from.length)]
    return out
  }
  const huge = "A".repeat(64 * 1024)
  return (i: number): string => {
    switch (i % 8) {
      case 0:
        return chars(random.int(120), noise)
      case 1:
        // Right length and prefix, random body: matches nothing, then refused by checksum.
        return BearerToken.prefix + chars(BearerToken.length - BearerToken.prefix.length, alphabet)
      case 2:
        // Well formed, never issued here.
        return BearerToken.mint()
      case 3: {
        const real = random.pick(live)
        const at = BearerToken.prefix.length + random.int(BearerToken.length - BearerToken.prefix.length)
        const swapped = alphabet[(alphabet.indexOf(real[at]!) + 1 + random.int(63)) % 64]!
        return real.slice(0, at) + swapped + real.slice(at + 1)
      }
      case 4:
        return random.pick(revoked)
      case 5:
        return random.next() < 0.5 ? random.pick(live).slice(0, -1 - random.int(10)) : random.pick(live) + "="
      case 6:
        return i % 1000 === 6 ? huge : `Bearer ${random.pick(live)}`
      default:
        return random.pick(live).toLowerCase()
    }
  }
}

/** A Map that counts how it is used. */
class CountingMap<K, V> extends Map<K, V> {
  reads = 0
  writes = 0
  override get(key: K) {
    this.reads++
    return super.get(key)
  }
  override has(key: K) {
    this.reads++
    return super.has(key)
  }
  override set(key: K, value: V) {
    this.writes++
    return super.set(key, value)
  }
  override delete(key: K) {
    this.writes++
    return super.delete(key)
  }
}

/** A digest index that counts how it is used. */
class CountingIndex extends DigestIndex<Entry> {
  reads = 0
  writes = 0
  override get(key: string) {
    this.reads++
    return super.get(key)
  }
  override has(key: string) {
    this.reads++
    return super.has(key)
  }
  override add(entry: Entry) {
    this.writes++
    super.add(entry)
  }
  override delete(entry: Entry) {
    this.writes++
    return super.delete(entry)
  }
}

/** A store whose indexes count their reads and writes, filled with `live` credentials and tombstones at their cap. */
const countingStore = (live: number) =>
  Effect.gen(function*() {
    const config = yield* RegistryConfig.resolve({ maxCredentials: live, maxTombstones: 1_000 })
    const store = new Store(config)
    const maps = {
      byDigest: new CountingIndex(),
      byId: new CountingMap<string, unknown>(),
      threads: new CountingMap<string, unknown>(),
      tombstones: new CountingMap<string, number>()
    }
    Object.assign(store, maps)
    const tokens: Array<string> = []
    const revoked: Array<string> = []
    for (let i = 0; i < live + 1_500; i++) {
      const issued = store.issue({ threadId: `t${i % 500}`, providerInstanceId: `p${i}` }, 0, [])
      if ("_tag" in issued) throw new Error("registry full")
      if (i < 1_500) {
        store.revoke(issued.entry, "revoked", 0, [])
        revoked.push(issued.token)
      } else {
        tokens.push(issued.token)
      }
    }
    const sizes = () => ({
      byDigest: store.byDigest.size,
      byId: store.byId.size,
      threads: store.threads.size,
      tombstones: store.tombstones.size,
      reclaimed: store.reclaimed.length
    })
    const counts = () => Object.values(maps).map((m) => [m.reads, m.writes] as const)
    return { store, maps, tokens, revoked, sizes, counts }
  })

describe("hardening: token spraying", () => {
  it.live("100,000 wrong tokens are refused and change nothing in the registry", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const live: Array<string> = []
      const revoked: Array<string> = []
      for (let i = 0; i < 2_000; i++) {
        const credential = yield* registry.issue({ threadId: `t${i % 200}`, providerInstanceId: `p${i}` })
        if (i < 500) {
          yield* registry.revoke(credential.credentialId)
          revoked.push(Redacted.value(credential.token))
        } else {
          live.push(Redacted.value(credential.token))
        }
      }
      const failedBefore = yield* failedLookups
      const spray = sprayer(1, live, revoked)
      let accepted = 0
      for (let i = 0; i < sprayCount; i++) {
        if (Exit.isSuccess(yield* Effect.exit(registry.resolve(spray(i))))) accepted++
      }
      assert.strictEqual(accepted, 0)
      assert.strictEqual((yield* failedLookups) - failedBefore, sprayCount)
      assert.strictEqual(yield* metricValue("mcp_session_registry_resolutions_total", { outcome: "ok" }), 0)
      assert.lengthOf(yield* registry.list, live.length)
      for (const token of live) yield* registry.resolve(token)
    }).pipe(Effect.provide(McpSessionRegistry.layer({ maxTombstones: 200, hooks: [recorder().hook] }))))

  it.effect("each wrong token costs at most two map reads and no write, whatever the registry holds", () =>
    Effect.gen(function*() {
      const perRun = []
      for (const live of [1_000, 20_000]) {
        const { counts, revoked, sizes, store, tokens } = yield* countingStore(live)
        const before = sizes()
        assert.strictEqual(before.tombstones, 1_000, "tombstones at their cap")
        const countsBefore = counts()
        const spray = sprayer(2, tokens, revoked)
        let accepted = 0
        for (let i = 0; i < sprayCount; i++) {
          if (typeof store.resolve(spray(i), 1) !== "string") accepted++
        }
        assert.strictEqual(accepted, 0)
        // Nothing grew, nothing was written: memory stays flat under any spray.
        assert.deepStrictEqual(sizes(), before)
        const reads = counts().map(([r], i) => r - countsBefore[i]![0])
        const writes = counts().map(([, w], i) => w - countsBefore[i]![1])
        assert.deepStrictEqual(writes, [0, 0, 0, 0])
        assert.isAtMost(reads.reduce((a, b) => a + b, 0), 2 * sprayCount)
        perRun.push(reads)
      }
      // The same spray costs the same lookups against 1,000 or 20,000 credentials.
      assert.deepStrictEqual(perRun[0], perRun[1])
    }))
})

const failedLookups = Effect.gen(function*() {
  let total = 0
  for (const outcome of ["missing", "malformed", "unknown", "revoked", "idle", "expired"]) {
    total += (yield* metricValue("mcp_session_registry_resolutions_total", { outcome })) ?? 0
  }
  return total
})
