import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Logger, Metric, Option, Redacted, Scope, Tracer } from "effect"
import { McpSessionRegistry, type RegistryConfig, type Revocation } from "../src/index.ts"
import { recordingTracer } from "./support/recording.ts"
import { advanceUntilDone, stores, type StoreUnderTest } from "./support/stores.ts"

const minutes = (n: number) => n * 60_000
const hours = (n: number) => n * 3_600_000

const recorder = () => {
  const events: Array<Revocation.RevocationEvent> = []
  const hook: Revocation.RevocationHook = (event) => Effect.sync(() => void events.push(event))
  const reasons = () => events.map((event) => event.reason)
  return { events, hook, reasons }
}

const Registry = McpSessionRegistry.McpSessionRegistry

/** Runs `body` against a registry on `store` built with `options` plus a recording hook. */
const withRegistryOn = (store: StoreUnderTest) => <A, E>(
  options: RegistryConfig.Options,
  body: (
    registry: McpSessionRegistry.McpSessionRegistry["Service"],
    recorded: ReturnType<typeof recorder>
  ) => Effect.Effect<A, E, Scope.Scope>
) => {
  const recorded = recorder()
  return Effect.gen(function*() {
    const registry = yield* Registry
    return yield* body(registry, recorded)
  }).pipe(
    Effect.scoped,
    Effect.provide(store.layer({ ...options, hooks: [...(options.hooks ?? []), recorded.hook] }))
  )
}

const token = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)

/** A `Clock` that reads as `base` does, but for the readings in `overrides`. */
const clockLike = (base: Clock.Clock, overrides: Partial<Clock.Clock>): Clock.Clock => ({
  currentTimeMillisUnsafe: () => base.currentTimeMillisUnsafe(),
  currentTimeMillis: base.currentTimeMillis,
  currentTimeNanosUnsafe: () => base.currentTimeNanosUnsafe(),
  currentTimeNanos: base.currentTimeNanos,
  monotonicTimeNanosUnsafe: () => base.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: base.monotonicTimeNanos,
  sleep: (duration) => base.sleep(duration),
  ...overrides
})

const reasonOf = <A>(effect: Effect.Effect<A, { readonly reason: string }>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

// The core suite runs against both stores: the same semantics wherever physics allows.
for (const store of stores()) describe(`McpSessionRegistry (${store.name})`, () => {
  const withRegistry = withRegistryOn(store)

  describe("issue", () => {
    it.effect("mints a credential scoped to a thread and provider instance", () =>
      withRegistry({ maxLifetime: "1 hour" }, (registry) =>
        Effect.gen(function*() {
          yield* store.advance(1_000)
          const credential = yield* registry.issue({
            threadId: "thread-1",
            providerInstanceId: "codex",
            capabilities: ["tools"]
          })
          assert.strictEqual(credential.threadId, "thread-1")
          assert.strictEqual(credential.providerInstanceId, "codex")
          assert.deepStrictEqual(credential.capabilities, ["tools"])
          assert.match(credential.credentialId, /^cred_/)
          assert.match(credential.providerSessionId, /^psess_/)
          assert.strictEqual(credential.issuedAt, 1_000)
          assert.strictEqual(credential.expiresAt, 1_000 + hours(1))
          assert.isTrue(Redacted.isRedacted(credential.token))
          assert.strictEqual(Redacted.value(credential.authorizationHeader), `Bearer ${token(credential)}`)
          const again = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "claude" })
          assert.notStrictEqual(again.providerSessionId, credential.providerSessionId)
          assert.notStrictEqual(token(again), token(credential))
        })))

    it.effect("rejects a request without ids with a typed error", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const empty = yield* Effect.flip(registry.issue({ threadId: "", providerInstanceId: "p" }))
          assert.strictEqual(empty._tag, "InvalidIssueRequest")
          assert.include(empty.message, "threadId")
          const wrong = yield* Effect.flip(registry.issue({ threadId: "t", providerInstanceId: 7 as never }))
          assert.include(wrong.message, "providerInstanceId")
          const capabilities = yield* Effect.flip(
            registry.issue({ threadId: "t", providerInstanceId: "p", capabilities: [1] as never })
          )
          assert.include(capabilities.message, "capabilities")
          const huge = yield* Effect.flip(registry.issue({ threadId: "t".repeat(100_000), providerInstanceId: "p" }))
          assert.strictEqual(huge._tag, "InvalidIssueRequest")
          assert.strictEqual((yield* registry.list).length, 0)
        })))

    // Redis keys are UTF-8, and a lone surrogate becomes U+FFFD on the way:
    // two different thread ids would share one thread there.
    it.effect("refuses ids that are not well-formed Unicode, so no two threads can meet", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          for (const [field, request] of [
            ["threadId", { threadId: "job-\uD800", providerInstanceId: "p" }],
            ["threadId", { threadId: "\uDC00job", providerInstanceId: "p" }],
            ["providerInstanceId", { threadId: "t", providerInstanceId: "p\uDBFF" }],
            ["capabilities", { threadId: "t", providerInstanceId: "p", capabilities: ["tools:\uDFFF"] }]
          ] as const) {
            const refused = yield* Effect.flip(registry.issue(request))
            assert.strictEqual(refused._tag, "InvalidIssueRequest")
            assert.strictEqual((refused as McpSessionRegistry.InvalidIssueRequest).field, field)
          }
          // A well-formed pair and U+FFFD itself are ids like any other.
          const emoji = yield* registry.issue({ threadId: "job-\uD83D\uDE00", providerInstanceId: "p" })
          const replacement = yield* registry.issue({ threadId: "job-\uFFFD", providerInstanceId: "p" })
          assert.strictEqual((yield* registry.resolve(token(emoji))).threadId, "job-\uD83D\uDE00")
          // Thread operations given a lone surrogate match nothing, not the U+FFFD thread.
          assert.strictEqual(yield* registry.touch("job-\uD800"), 0)
          assert.strictEqual(yield* registry.revokeThread("job-\uD800"), 0)
          assert.strictEqual((yield* registry.resolve(token(replacement))).threadId, "job-\uFFFD")
        })))

    it.effect("replaces the live credential of the same thread and provider instance", () =>
      withRegistry({}, (registry, recorded) =>
        Effect.gen(function*() {
          const first = yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
          const other = yield* registry.issue({ threadId: "t", providerInstanceId: "codex" })
          const second = yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
          assert.strictEqual(yield* reasonOf(registry.resolve(token(first))), "revoked")
          assert.strictEqual((yield* registry.resolve(token(second))).credentialId, second.credentialId)
          assert.strictEqual((yield* registry.resolve(token(other))).credentialId, other.credentialId)
          assert.deepStrictEqual(recorded.reasons(), ["replaced"])
          assert.strictEqual(recorded.events[0]!.credential.credentialId, first.credentialId)
          assert.sameMembers((yield* registry.list).map((c) => c.credentialId), [
            other.credentialId,
            second.credentialId
          ])
        })))

    it.effect("keeps both credentials with replace: false", () =>
      withRegistry({}, (registry, recorded) =>
        Effect.gen(function*() {
          const first = yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
          const second = yield* registry.issue({ threadId: "t", providerInstanceId: "claude", replace: false })
          yield* registry.resolve(token(first))
          yield* registry.resolve(token(second))
          assert.deepStrictEqual(recorded.reasons(), [])
        })))

    it.effect("fails with RegistryFull instead of evicting a live credential", () =>
      withRegistry({ maxCredentials: 2, maxCredentialsPerThread: 2 }, (registry, recorded) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t1", providerInstanceId: "p1" })
          const b = yield* registry.issue({ threadId: "t2", providerInstanceId: "p1" })
          const full = yield* Effect.flip(registry.issue({ threadId: "t3", providerInstanceId: "p1" }))
          assert.strictEqual(full._tag, "RegistryFull")
          if (full._tag === "RegistryFull") {
            assert.strictEqual(full.scope, "registry")
            assert.strictEqual(full.limit, 2)
          }
          yield* registry.resolve(token(a))
          yield* registry.resolve(token(b))
          // A replacement frees its own slot, so it still fits.
          const a2 = yield* registry.issue({ threadId: "t1", providerInstanceId: "p1" })
          yield* registry.resolve(token(a2))
          assert.deepStrictEqual(recorded.reasons(), ["replaced"])
        })))

    it.effect("does not count dead credentials the sweeper has not reached against the registry cap", () =>
      withRegistry({ maxCredentials: 2, idleTimeout: "10 minutes", sweepInterval: "1 day" }, (registry, recorded) =>
        Effect.gen(function*() {
          yield* registry.issue({ threadId: "t1", providerInstanceId: "p" })
          yield* registry.issue({ threadId: "t2", providerInstanceId: "p" })
          yield* store.advance(minutes(11))
          const fresh = yield* registry.issue({ threadId: "t3", providerInstanceId: "p" })
          yield* registry.resolve(token(fresh))
          yield* store.settle
          assert.deepStrictEqual(recorded.reasons(), ["idle", "idle"])
        })))

    it.effect("never waits for the replaced credential's hooks, so a caller's timeout loses no token", () =>
      withRegistry({ hooks: [(e) => e.reason === "replaced" ? Effect.sleep("1 second") : Effect.void] }, (
        registry,
        recorded
      ) =>
        Effect.gen(function*() {
          const old = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
          const fresh = yield* registry.issue({ threadId: "t", providerInstanceId: "p" }).pipe(
            Effect.timeoutOption("50 millis")
          )
          assert.isTrue(fresh._tag === "Some")
          if (fresh._tag === "Some") yield* registry.resolve(token(fresh.value))
          assert.strictEqual(yield* reasonOf(registry.resolve(token(old))), "revoked")
          assert.deepStrictEqual(recorded.reasons(), ["replaced"])
          yield* store.advance("1 second")
        })))

    it.effect("enforces the per-thread cap, not counting dead credentials", () =>
      withRegistry({ maxCredentialsPerThread: 2, idleTimeout: "10 minutes" }, (registry) =>
        Effect.gen(function*() {
          yield* registry.issue({ threadId: "t", providerInstanceId: "p1" })
          yield* registry.issue({ threadId: "t", providerInstanceId: "p2" })
          const full = yield* Effect.flip(registry.issue({ threadId: "t", providerInstanceId: "p3" }))
          assert.strictEqual(full._tag === "RegistryFull" && full.scope, "thread")
          assert.include(full.message, "\"t\"")
          yield* registry.issue({ threadId: "other", providerInstanceId: "p3" })
          yield* store.advance(minutes(11))
          yield* registry.issue({ threadId: "t", providerInstanceId: "p3" })
          assert.strictEqual((yield* registry.list).filter((c) => c.threadId === "t").length, 1)
        })))
  })

  describe("lifetime", () => {
    it.effect("slides expiry forward on every use, past the original expiry", () =>
      withRegistry({ idleTimeout: "30 minutes", maxLifetime: "1 hour" }, (registry, recorded) =>
        Effect.gen(function*() {
          const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
          let lastExpiry = credential.expiresAt
          for (let i = 1; i <= 9; i++) {
            yield* store.advance(minutes(20))
            const scope = yield* registry.resolve(token(credential))
            assert.strictEqual(scope.lastUsedAt, minutes(20 * i))
            assert.strictEqual(scope.expiresAt, minutes(20 * i) + hours(1))
            assert.isAbove(scope.expiresAt, lastExpiry)
            lastExpiry = scope.expiresAt
          }
          // Three hours in: three times the original lifetime, still alive.
          assert.isAbove(minutes(180), credential.expiresAt)
          assert.deepStrictEqual(recorded.reasons(), [])
        })))

    // The memory store keeps times relative to an origin, as small integers
    // while they fit (about 23 days); the figures must stay exact past that.
    it.effect("keeps every figure exact in a registry that runs for weeks", () =>
      withRegistry(
        { idleTimeout: "2 days", maxLifetime: "3 days", absoluteLifetime: "40 days", sweepInterval: "1 day" },
        (registry, recorded) =>
          Effect.gen(function*() {
            const days = (n: number) => hours(24 * n)
            const early = yield* registry.issue({ threadId: "early", providerInstanceId: "p" })
            let late: typeof early | undefined
            for (let day = 1; day <= 30; day++) {
              yield* store.advance(days(1))
              assert.strictEqual(yield* registry.touch("early"), 1)
              if (day === 25) late = yield* registry.issue({ threadId: "late", providerInstanceId: "p" })
              if (day > 25) assert.strictEqual(yield* registry.touch("late"), 1)
            }
            const scope = yield* registry.resolve(token(early))
            assert.strictEqual(scope.issuedAt, 0)
            assert.strictEqual(scope.lastUsedAt, days(30))
            assert.strictEqual(scope.expiresAt, days(33))
            assert.strictEqual(scope.idleExpiresAt, days(32))
            const lateScope = yield* registry.resolve(token(late!))
            assert.strictEqual(lateScope.issuedAt, days(25))
            assert.strictEqual(lateScope.lastUsedAt, days(30))
            // The late one is left alone: idle one millisecond past its timeout.
            yield* store.advance(days(2))
            assert.strictEqual(yield* registry.touch("early"), 1)
            assert.strictEqual(Option.getOrThrow(yield* registry.get(late!.credentialId)).idleExpiresAt, days(32))
            yield* store.advance(1)
            assert.strictEqual(yield* reasonOf(registry.resolve(token(late!))), "idle")
            // The early one, used daily, still ends at its absolute cap to the millisecond.
            for (let day = 33; day < 40; day++) {
              yield* store.advance(days(1) - (day === 33 ? 1 : 0))
              assert.strictEqual(yield* registry.touch("early"), 1)
            }
            assert.strictEqual((yield* registry.resolve(token(early))).expiresAt, days(40))
            yield* store.advance(days(1))
            assert.strictEqual((yield* registry.resolve(token(early))).expiresAt, days(40))
            yield* store.advance(1)
            assert.strictEqual(yield* reasonOf(registry.resolve(token(early))), "expired")
            yield* store.settle
            assert.deepStrictEqual(recorded.reasons().sort(), ["expired", "idle"])
          })
      ))

    it.effect("dies idle one millisecond after the idle timeout, and not before", () =>
      withRegistry({ idleTimeout: "30 minutes", sweepInterval: "1 day" }, (registry, recorded) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          yield* store.advance(minutes(30))
          yield* registry.resolve(token(a))
          yield* store.advance(1)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(b))), "idle")
          assert.strictEqual(yield* reasonOf(registry.resolve(token(b))), "idle")
          yield* registry.resolve(token(a))
          yield* store.settle
          assert.deepStrictEqual(recorded.reasons(), ["idle"])
          assert.strictEqual(recorded.events[0]!.credential.credentialId, b.credentialId)
        })))

    it.effect("the background sweeper reclaims idle credentials with no lookup", () =>
      withRegistry({ idleTimeout: "10 minutes", sweepInterval: "1 minute" }, (registry, recorded) =>
        Effect.gen(function*() {
          for (let i = 0; i < 10; i++) yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
          yield* store.advance(minutes(12))
          assert.deepStrictEqual(recorded.reasons(), Array(10).fill("idle"))
          assert.strictEqual((yield* registry.list).length, 0)
          assert.strictEqual(yield* registry.sweep, 0)
        })))

    it.effect("keeps the time of the clock it was built with, not its caller's", () =>
      Effect.gen(function*() {
        // Built under a clock that stands at 5,000,000 ms; called from the
        // test's TestClock, which starts at 0 and moves.
        const fixed = clockLike(yield* Clock.Clock, {
          currentTimeMillisUnsafe: () => 5_000_000,
          monotonicTimeNanosUnsafe: () => 5_000_000_000_000n
        })
        const registry = yield* store.make({ idleTimeout: "10 minutes" }).pipe(
          Effect.provideService(Clock.Clock, fixed)
        )
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        assert.strictEqual(credential.issuedAt, 5_000_000)
        yield* store.advance(hours(2))
        // Two hours on the caller's clock are nothing to the registry's.
        const scope = yield* registry.resolve(token(credential))
        assert.strictEqual(scope.lastUsedAt, 5_000_000)
        assert.strictEqual(scope.idleExpiresAt, 5_000_000 + minutes(10))
      }).pipe(Effect.scoped))

    // The memory store's sweeper works in chunks bounded by time: internals of that store.
    if (store.name === "memory") it.effect("the sweeper yields after a few milliseconds of work, before its count limit", () =>
      Effect.gen(function*() {
        // Monotonic time that jumps 1 ms at every read: each chunk runs out of
        // time long before it reaches `sweepChunkSize`.
        let ticks = 0n
        const racing = clockLike(yield* Clock.Clock, {
          monotonicTimeNanosUnsafe: () => (ticks += 1_000_000n),
          monotonicTimeNanos: Effect.sync(() => (ticks += 1_000_000n))
        })
        const recorded = recorder()
        // Idle on wall time: this clock's monotonic time is only the sweeper's budget.
        const registry = yield* store.make({
          idleTimeout: "10 minutes",
          sweepInterval: "1 day",
          idleClock: "wall",
          hooks: [recorded.hook]
        }).pipe(Effect.provideService(Clock.Clock, racing))
        const count = McpSessionRegistry.sweepChunkSize - 1
        for (let i = 0; i < count; i++) yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
        yield* store.advance(minutes(11))
        let sweeping = true
        const seen = new Set<number>()
        const watcher = yield* Effect.forkChild(Effect.whileLoop({
          while: () => sweeping,
          body: () => Effect.andThen(Effect.yieldNow, Effect.sync(() => seen.add(recorded.events.length))),
          step: () => {}
        }))
        assert.strictEqual(yield* registry.sweep, count)
        sweeping = false
        yield* Fiber.join(watcher)
        // Between chunks other fibers ran and saw the sweep part-done.
        assert.isAbove([...seen].filter((reclaimed) => reclaimed > 0 && reclaimed < count).length, 5)
        assert.strictEqual(recorded.events.length, count)
      }).pipe(Effect.scoped))

    it.effect("touch is a use for every live credential of the thread", () =>
      withRegistry({ idleTimeout: "30 minutes", sweepInterval: "1 minute", tombstoneRetention: "1 day" }, (
        registry,
        recorded
      ) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          const c = yield* registry.issue({ threadId: "u", providerInstanceId: "a" })
          for (let i = 0; i < 6; i++) {
            yield* store.advance(minutes(25))
            assert.strictEqual(yield* registry.touch("t"), 2)
          }
          assert.strictEqual(yield* registry.touch("nobody"), 0)
          const scope = yield* registry.resolve(token(a))
          assert.strictEqual(scope.lastUsedAt, minutes(150))
          yield* registry.resolve(token(b))
          assert.strictEqual(yield* reasonOf(registry.resolve(token(c))), "idle")
          assert.deepStrictEqual(recorded.reasons(), ["idle"])
        })))

    it.effect("touch does not revive a dead credential", () =>
      withRegistry({ idleTimeout: "30 minutes", sweepInterval: "1 day" }, (registry, recorded) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          yield* store.advance(minutes(31))
          assert.strictEqual(yield* registry.touch("t"), 0)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "idle")
          yield* store.settle
          assert.deepStrictEqual(recorded.reasons(), ["idle"])
        })))

    it.effect("expires at maxLifetime after the last use", () =>
      withRegistry({ idleTimeout: "1 hour", maxLifetime: "1 hour", sweepInterval: "1 day" }, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          yield* store.advance(hours(1) + 1)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "expired")
        })))

    it.effect("never extends past the absolute cap", () =>
      withRegistry({ idleTimeout: "30 minutes", maxLifetime: "1 hour", absoluteLifetime: "2 hours" }, (
        registry,
        recorded
      ) =>
        Effect.gen(function*() {
          const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
          for (let i = 1; i <= 6; i++) {
            yield* store.advance(minutes(20))
            const scope = yield* registry.resolve(token(credential))
            assert.isAtMost(scope.expiresAt, hours(2))
          }
          assert.strictEqual((yield* registry.resolve(token(credential))).expiresAt, hours(2))
          yield* store.advance(1)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "expired")
          yield* store.settle
          assert.deepStrictEqual(recorded.reasons(), ["expired"])
        })))
  })

  describe("resolve", () => {
    it.effect("tells missing, malformed, oversized and unknown tokens apart", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
          const real = token(credential)
          assert.strictEqual(yield* reasonOf(registry.resolve("")), "missing")
          assert.strictEqual(yield* reasonOf(registry.resolve("Bearer " + real)), "malformed")
          assert.strictEqual(yield* reasonOf(registry.resolve(real.slice(0, -2))), "malformed")
          assert.strictEqual(yield* reasonOf(registry.resolve("x".repeat(1024 * 1024))), "malformed")
          assert.strictEqual(yield* reasonOf(registry.resolve(undefined as never)), "malformed")
          assert.strictEqual(yield* reasonOf(registry.resolve({ token: real } as never)), "malformed")
          // Well formed (valid checksum) but never issued here.
          const { BearerToken } = yield* Effect.promise(() => import("../src/index.ts"))
          assert.strictEqual(yield* reasonOf(registry.resolve(BearerToken.mint())), "unknown")
          const error = yield* Effect.flip(registry.resolve(real.slice(0, -1) + "?"))
          assert.notInclude(error.message, real.slice(6, 30))
          yield* registry.resolve(real)
        })))

    it.effect("refuses any one changed character of a live or revoked token as malformed, the checksum's included", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const live = token(yield* registry.issue({ threadId: "t", providerInstanceId: "p" }))
          const revoked = yield* registry.issue({ threadId: "t", providerInstanceId: "q" })
          yield* registry.revoke(revoked.credentialId)
          for (const real of [live, token(revoked)]) {
            // The prefix, the body's ends and every checksum character.
            for (const at of [0, 5, 6, 48, 49, 50, 51, 52, 53, 54]) {
              const changed = real.slice(0, at) + (real[at] === "A" ? "B" : "A") + real.slice(at + 1)
              assert.strictEqual(yield* reasonOf(registry.resolve(changed)), "malformed", `character ${at}`)
            }
          }
          // The exact tokens still read as they did.
          yield* registry.resolve(live)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(revoked))), "revoked")
        })))

    it.effect("refuses a token holding a character outside ASCII as malformed, even under a checksum that agrees", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const real = token(yield* registry.issue({ threadId: "t", providerInstanceId: "p" }))
          // The checksum of the body's UTF-8 bytes, as anyone can compute it.
          const { createHash } = yield* Effect.promise(() => import("node:crypto"))
          for (const odd of ["é", "中", "\ud800"]) {
            const keyed = real.slice(0, 20) + odd + real.slice(21, 49)
            const crafted = keyed + createHash("sha256").update(keyed).digest("base64url").slice(0, 6)
            assert.strictEqual(crafted.length, real.length)
            assert.strictEqual(yield* reasonOf(registry.resolve(crafted)), "malformed", JSON.stringify(odd))
          }
          yield* registry.resolve(real)
        })))

    it.effect("keeps revoked, idle and expired reasons for the tombstone retention, then says unknown", () =>
      withRegistry({ idleTimeout: "10 minutes", tombstoneRetention: "1 hour", sweepInterval: "1 minute" }, (registry) =>
        Effect.gen(function*() {
          const revoked = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const idle = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          const stopped = yield* registry.issue({ threadId: "u", providerInstanceId: "a" })
          yield* registry.revoke(revoked.credentialId)
          yield* registry.revokeThread("u")
          yield* store.advance(minutes(11))
          assert.strictEqual(yield* reasonOf(registry.resolve(token(revoked))), "revoked")
          assert.strictEqual(yield* reasonOf(registry.resolve(token(stopped))), "revoked")
          assert.strictEqual(yield* reasonOf(registry.resolve(token(idle))), "idle")
          // The revocations were buried at 0, the idle one by the sweep at 11 minutes.
          yield* store.advance(minutes(50))
          assert.strictEqual(yield* reasonOf(registry.resolve(token(revoked))), "unknown")
          assert.strictEqual(yield* reasonOf(registry.resolve(token(idle))), "idle")
          yield* store.advance(minutes(11))
          assert.strictEqual(yield* reasonOf(registry.resolve(token(idle))), "unknown")
        })))

    it.effect("bounds the tombstones, forgetting the oldest first", () =>
      withRegistry({ maxTombstones: 2 }, (registry) =>
        Effect.gen(function*() {
          const issued = []
          for (const p of ["a", "b", "c"]) issued.push(yield* registry.issue({ threadId: "t", providerInstanceId: p }))
          for (const credential of issued) yield* registry.revoke(credential.credentialId)
          assert.deepStrictEqual(
            yield* Effect.forEach(issued, (credential) => reasonOf(registry.resolve(token(credential)))),
            ["unknown", "revoked", "revoked"]
          )
        })))
  })

  describe("revocation", () => {
    it.effect("revoke, revokeProviderSession and revokeThread report what was live", () =>
      withRegistry({}, (registry, recorded) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          const c = yield* registry.issue({ threadId: "t", providerInstanceId: "c" })
          const d = yield* registry.issue({ threadId: "u", providerInstanceId: "a" })
          assert.isTrue(yield* registry.revoke(a.credentialId))
          assert.isFalse(yield* registry.revoke(a.credentialId))
          assert.isFalse(yield* registry.revoke("cred_nope"))
          assert.strictEqual(yield* registry.revokeProviderSession(b.providerSessionId), 1)
          assert.strictEqual(yield* registry.revokeProviderSession(b.providerSessionId), 0)
          assert.strictEqual(yield* registry.revokeProviderSession(b.credentialId), 0)
          assert.strictEqual(yield* registry.revokeThread("t"), 1)
          assert.strictEqual(yield* registry.revokeThread("t"), 0)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(c))), "revoked")
          yield* registry.resolve(token(d))
          assert.strictEqual(yield* registry.revokeAll, 1)
          assert.deepStrictEqual(recorded.reasons(), ["revoked", "session-stopped", "session-stopped", "revoked"])
          assert.deepStrictEqual(recorded.events.map((e) => e.credential.credentialId), [
            a.credentialId,
            b.credentialId,
            c.credentialId,
            d.credentialId
          ])
          assert.strictEqual((yield* registry.list).length, 0)
        })))

    it.effect("get reads a live credential without using it", () =>
      withRegistry({ idleTimeout: "10 minutes", maxLifetime: "1 hour", sweepInterval: "1 day" }, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a", capabilities: ["x"] })
          yield* store.advance(minutes(4))
          yield* registry.resolve(token(a))
          yield* store.advance(minutes(5))
          const read = yield* registry.get(a.credentialId)
          assert.isTrue(Option.isSome(read))
          assert.deepStrictEqual(Option.getOrThrow(read), {
            credentialId: a.credentialId,
            providerSessionId: a.providerSessionId,
            threadId: "t",
            providerInstanceId: "a",
            capabilities: ["x"],
            issuedAt: 0,
            lastUsedAt: minutes(4),
            expiresAt: minutes(4) + hours(1),
            idleExpiresAt: minutes(14)
          })
          assert.notProperty(Option.getOrThrow(read), "token")
          assert.deepStrictEqual(yield* registry.list, [Option.getOrThrow(read)])
          // Reading is not a use: the idle clock runs on from the resolve.
          for (let i = 0; i < 3; i++) yield* registry.get(a.credentialId)
          assert.strictEqual(Option.getOrThrow(yield* registry.get(a.credentialId)).lastUsedAt, minutes(4))
          yield* store.advance(minutes(5) + 1)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "idle")
        })))

    it.effect("get is none for a revoked, replaced or unknown credential", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          assert.isTrue(Option.isSome(yield* registry.get(a.credentialId)))
          assert.isTrue(yield* registry.revoke(a.credentialId))
          assert.isTrue(Option.isNone(yield* registry.get(a.credentialId)))
          assert.isTrue(Option.isNone(yield* registry.get(b.credentialId)))
          assert.isTrue(Option.isNone(yield* registry.get("cred_nope")))
          // Ids of other kinds name no credential.
          assert.isTrue(Option.isNone(yield* registry.get(a.providerSessionId)))
        })))

    it.effect("get is none for a credential past its idle timeout that no sweep reclaimed yet", () =>
      withRegistry({ idleTimeout: "10 minutes", sweepInterval: "1 day" }, (registry, recorded) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          yield* store.advance(minutes(10))
          assert.isTrue(Option.isSome(yield* registry.get(a.credentialId)))
          yield* store.advance(1)
          assert.isTrue(Option.isNone(yield* registry.get(a.credentialId)))
          // Still in the store: get only reads, so the sweep reclaims it, as idle.
          assert.deepStrictEqual(recorded.reasons(), [])
          assert.strictEqual(yield* registry.sweep, 1)
          assert.deepStrictEqual(recorded.reasons(), ["idle"])
          assert.isTrue(Option.isNone(yield* registry.get(a.credentialId)))
        })))

    it.effect("get answers none to input that is not a string, and never throws", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const garbage: ReadonlyArray<unknown> = [
            undefined,
            null,
            42,
            { toString: () => a.credentialId },
            [a.credentialId],
            Symbol("x"),
            "",
            "x".repeat(1_000_000)
          ]
          for (const input of garbage) {
            assert.isTrue(Option.isNone(yield* registry.get(input as string)))
          }
          assert.isTrue(Option.isSome(yield* registry.get(a.credentialId)))
        })))

    it.effect("issueScoped revokes with session-stopped when the scope closes", () =>
      withRegistry({}, (registry, recorded) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const credential = yield* registry.issueScoped({ threadId: "t", providerInstanceId: "p" }).pipe(
            Scope.provide(scope)
          )
          yield* registry.resolve(token(credential))
          yield* Scope.close(scope, Exit.void)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "revoked")
          assert.deepStrictEqual(recorded.reasons(), ["session-stopped"])
        })))

    it.effect("onRevoke hooks see the events of their scope only", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const scoped = recorder()
          const scope = yield* Scope.make()
          yield* registry.onRevoke(scoped.hook).pipe(Scope.provide(scope))
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          yield* registry.revoke(a.credentialId)
          yield* Scope.close(scope, Exit.void)
          yield* registry.revoke(b.credentialId)
          assert.deepStrictEqual(scoped.events.map((e) => e.credential.credentialId), [a.credentialId])
        })))

    it.effect("failing, dying and hanging hooks never block revocation or other hooks", () => {
      const failing: Revocation.RevocationHook = () => Effect.fail("boom")
      const dying: Revocation.RevocationHook = () => Effect.die(new Error("crash"))
      const throwing: Revocation.RevocationHook = () => {
        throw new Error("sync crash")
      }
      const hanging: Revocation.RevocationHook = () => Effect.never
      return withRegistry({ hooks: [failing, dying, throwing, hanging], hookTimeout: "5 seconds" }, (
        registry,
        recorded
      ) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          const revoking = yield* Effect.forkChild(registry.revoke(a.credentialId))
          yield* store.settle
          // Revocation took effect at once, before any hook finished.
          assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "revoked")
          assert.deepStrictEqual(recorded.reasons(), ["revoked"])
          yield* store.advance("5 seconds")
          assert.isTrue(yield* Fiber.join(revoking))
        }))
    })

    it.effect("each credential's hooks run exactly once with one reason, whatever the way out", () =>
      withRegistry({ idleTimeout: "10 minutes", sweepInterval: "1 minute" }, (registry, recorded) =>
        Effect.gen(function*() {
          const revoked = yield* registry.issue({ threadId: "t1", providerInstanceId: "p" })
          const stopped = yield* registry.issue({ threadId: "t2", providerInstanceId: "p" })
          const replaced = yield* registry.issue({ threadId: "t3", providerInstanceId: "p" })
          yield* registry.issue({ threadId: "t3", providerInstanceId: "p" })
          const idle = yield* registry.issue({ threadId: "t4", providerInstanceId: "p" })
          yield* registry.revoke(revoked.credentialId)
          yield* registry.revoke(revoked.credentialId)
          yield* registry.revokeThread("t2")
          yield* registry.revokeProviderSession(stopped.providerSessionId)
          yield* store.advance(minutes(5))
          yield* registry.touch("t3")
          yield* store.advance(minutes(6))
          yield* registry.resolve(token(idle)).pipe(Effect.ignore)
          yield* registry.revoke(idle.credentialId)
          yield* store.advance(minutes(5))
          const byCredential = new Map<string, Array<string>>()
          for (const event of recorded.events) {
            byCredential.set(event.credential.credentialId, [
              ...(byCredential.get(event.credential.credentialId) ?? []),
              event.reason
            ])
          }
          assert.deepStrictEqual(byCredential.get(revoked.credentialId), ["revoked"])
          assert.deepStrictEqual(byCredential.get(stopped.credentialId), ["session-stopped"])
          assert.deepStrictEqual(byCredential.get(replaced.credentialId), ["replaced"])
          assert.deepStrictEqual(byCredential.get(idle.credentialId), ["idle"])
          assert.strictEqual(byCredential.size, 5)
          assert.strictEqual(recorded.events.length, 5)
        })))
  })

  describe("shutdown", () => {
    it.effect("closing the layer revokes everything with shutdown and runs the hooks first", () =>
      Effect.gen(function*() {
        const recorded = recorder()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(store.layer({ hooks: [recorded.hook] }), scope)
        const registry = Context.get(context, Registry)
        const issued = []
        for (let i = 0; i < 5; i++) issued.push(yield* registry.issue({ threadId: `t${i % 2}`, providerInstanceId: `p${i}` }))
        yield* registry.revoke(issued[0]!.credentialId)
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(recorded.reasons(), ["revoked", "shutdown", "shutdown", "shutdown", "shutdown"])
        assert.sameMembers(
          recorded.events.slice(1).map((e) => e.credential.credentialId),
          issued.slice(1).map((c) => c.credentialId)
        )
        // A closed Redis registry has no connection left to ask: refused all the same.
        assert.strictEqual(
          yield* reasonOf(registry.resolve(token(issued[1]!))),
          store.name === "memory" ? "revoked" : "unreachable"
        )
      }))

    it.effect("options hooks see every shutdown even after a dependent layer's hooks are gone", () =>
      Effect.gen(function*() {
        const lifelong = recorder()
        const dependent = recorder()
        // A host's provider layer: registers a hook and owns one scoped session.
        const ProviderLayer = Layer.effectDiscard(Effect.gen(function*() {
          const registry = yield* Registry
          yield* registry.onRevoke(dependent.hook)
          yield* registry.issueScoped({ threadId: "t", providerInstanceId: "scoped" })
          yield* registry.issue({ threadId: "t", providerInstanceId: "plain" })
        }))
        const App = ProviderLayer.pipe(Layer.provideMerge(store.layer({ hooks: [lifelong.hook] })))
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(App, scope)
        const registry = Context.get(context, Registry)
        yield* registry.issue({ threadId: "u", providerInstanceId: "host" })
        yield* Scope.close(scope, Exit.void)
        // The provider layer closed first: its scoped session stopped while its hook was still there.
        assert.deepStrictEqual(dependent.reasons(), ["session-stopped"])
        assert.deepStrictEqual(lifelong.reasons(), ["session-stopped", "shutdown", "shutdown"])
        assert.sameMembers(lifelong.events.slice(1).map((e) => e.credential.providerInstanceId), ["plain", "host"])
      }))

    it.effect("a hanging hook cannot hold shutdown past the hook timeout", () =>
      Effect.gen(function*() {
        const recorded = recorder()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          store.layer({ hooks: [() => Effect.never, recorded.hook], hookTimeout: "2 seconds" }),
          scope
        )
        const registry = Context.get(context, Registry)
        for (let i = 0; i < 3; i++) yield* registry.issue({ threadId: "t", providerInstanceId: `p${i}` })
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* advanceUntilDone(store, closing, "2 seconds")
        assert.deepStrictEqual(recorded.reasons(), ["shutdown", "shutdown", "shutdown"])
      }))
  })

  it.effect("a hanging hook logs one warning per batch, not one per credential", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        store.layer({ hooks: [() => Effect.never], hookTimeout: "1 second" }).pipe(
          Layer.provide(Logger.layer([Logger.make((options) => void lines.push(String(options.message)))]))
        ),
        scope
      )
      const registry = Context.get(context, Registry)
      for (let i = 0; i < 1_000; i++) yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* advanceUntilDone(store, closing, "1 second")
      // The hooks' lines only: on a slow machine TestClock may add its own
      // warning while the Redis store's I/O runs in real time.
      const hookLines = lines.filter((line) => line.startsWith("Revocation hook"))
      assert.strictEqual(hookLines.length, 2)
      assert.include(hookLines[1], "999 more credentials")
      assert.deepStrictEqual(lines.filter((line) => !line.startsWith("Revocation hook") && !line.includes("advancing the test clock")), [])
    }))

  describe("observability", () => {
    it.effect("reports live credentials, issues, lookups by outcome and revocations by reason", () =>
      withRegistry({}, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          yield* registry.resolve(token(a))
          yield* registry.resolve(token(a))
          yield* registry.resolve("garbage").pipe(Effect.ignore)
          yield* registry.revoke(a.credentialId)
          yield* registry.resolve(token(a)).pipe(Effect.ignore)
          const snapshot = yield* Metric.snapshot
          const value = (id: string, attributes: Record<string, string> = {}) => {
            const found = snapshot.find((s) =>
              s.id === id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v)
            )
            assert.isDefined(found, id)
            const state = found!.state as { readonly count?: number; readonly value?: number }
            return state.count ?? state.value
          }
          assert.strictEqual(value("mcp_session_registry_credentials_live"), 1)
          assert.strictEqual(value("mcp_session_registry_credentials_issued_total"), 2)
          assert.strictEqual(value("mcp_session_registry_resolutions_total", { outcome: "ok" }), 2)
          assert.strictEqual(value("mcp_session_registry_resolutions_total", { outcome: "malformed" }), 1)
          assert.strictEqual(value("mcp_session_registry_resolutions_total", { outcome: "revoked" }), 1)
          assert.strictEqual(value("mcp_session_registry_revocations_total", { reason: "revoked" }), 1)
          assert.strictEqual(value("mcp_session_registry_revocations_total", { reason: "idle" }), 0)
        })))

    it.effect("issue records a span under the caller's, with the credential and thread ids", () => {
      const { spans, tracer } = recordingTracer()
      return withRegistry({ maxCredentialsPerThread: 1 }, (registry) =>
        Effect.gen(function*() {
          const issued = yield* registry.issue({ threadId: "t", providerInstanceId: "a" }).pipe(
            Effect.withSpan("host.spawn")
          )
          const refused = yield* registry.issue({ threadId: "t", providerInstanceId: "b" }).pipe(Effect.flip)
          assert.strictEqual(refused._tag, "RegistryFull")
          const host = spans.find((s) => s.name === "host.spawn")
          const [ok, full] = spans.filter((s) => s.name === "McpSessionRegistry.issue")
          assert.isDefined(host)
          assert.isDefined(full)
          assert.strictEqual(Option.getOrUndefined(ok!.parent)?.spanId, host!.spanId)
          assert.strictEqual(ok!.attributes.get("credentialId"), issued.credentialId)
          assert.strictEqual(ok!.attributes.get("threadId"), "t")
          assert.strictEqual(ok!.status._tag, "Ended")
          assert.strictEqual(full!.status._tag === "Ended" && full!.status.exit._tag, "Failure")
        })).pipe(Effect.provideService(Tracer.Tracer, tracer))
    })

    it.effect("list shows live credentials without their tokens", () =>
      withRegistry({ idleTimeout: "10 minutes", sweepInterval: "1 day" }, (registry) =>
        Effect.gen(function*() {
          const a = yield* registry.issue({ threadId: "t", providerInstanceId: "a" })
          yield* store.advance(minutes(6))
          const b = yield* registry.issue({ threadId: "t", providerInstanceId: "b" })
          yield* store.advance(minutes(6))
          const listed = yield* registry.list
          assert.deepStrictEqual(listed.map((c) => c.credentialId), [b.credentialId])
          assert.notInclude(JSON.stringify(listed), token(a))
          assert.notInclude(JSON.stringify(listed), token(b))
          assert.notProperty(listed[0], "token")
          assert.strictEqual(listed[0]!.idleExpiresAt, minutes(16))
        })))
  })
})
