/**
 * Liveness: what keeps a credential alive and what does not. Awake-time idle
 * (a machine that sleeps), host-reported suspend and resume, calls in flight,
 * `slideOnUse: false`, replacement of every credential of a pair, and the
 * refusals a host can see in its log.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { BearerToken, McpSessionRegistry, type RegistryConfig, type Revocation } from "../src/index.ts"
import { capturingLogs } from "./support/recording.ts"
import { stores } from "./support/stores.ts"

const seconds = (n: number) => n * 1_000
const minutes = (n: number) => n * 60_000
const hours = (n: number) => n * 3_600_000

const Registry = McpSessionRegistry.McpSessionRegistry

const token = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)

const recorder = () => {
  const events: Array<Revocation.RevocationEvent> = []
  const hook: Revocation.RevocationHook = (event) => Effect.sync(() => void events.push(event))
  return { events, hook, reasons: () => events.map((event) => event.reason) }
}

const reasonOf = <A>(effect: Effect.Effect<A, { readonly reason: string }>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

/**
 * A clock a test moves by hand, wall and monotonic time apart, as a machine
 * that sleeps moves them. Its sleeps never end, so no sweeper runs.
 */
const handClock = (startMillis = 1_700_000_000_000) => {
  let wall = startMillis
  let monotonic = 0n
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => wall,
    currentTimeMillis: Effect.sync(() => wall),
    currentTimeNanosUnsafe: () => BigInt(wall) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(wall) * 1_000_000n),
    monotonicTimeNanosUnsafe: () => monotonic,
    monotonicTimeNanos: Effect.sync(() => monotonic),
    sleep: () => Effect.never
  }
  return {
    clock,
    /** Both clocks move: the machine is awake. */
    awake: (millis: number) => {
      wall += millis
      monotonic += BigInt(millis) * 1_000_000n
    },
    /** Wall time moves; monotonic time moves by `countedMillis` (0 on Linux, all of it on macOS and Windows). */
    sleep: (millis: number, countedMillis: number) => {
      wall += millis
      monotonic += BigInt(countedMillis) * 1_000_000n
    },
    wall: () => wall
  }
}

const onHandClock = (options: RegistryConfig.Options) =>
  Effect.gen(function*() {
    const hand = handClock()
    const recorded = recorder()
    const registry = yield* McpSessionRegistry.make({ ...options, hooks: [recorded.hook] }).pipe(
      Effect.provideService(Clock.Clock, hand.clock)
    )
    return { hand, registry, recorded }
  })

const liveStores = stores()

describe("McpSessionRegistry liveness", () => {
  describe("idle clock", () => {
    it.effect("a credential lives through a sleep under \"awake\" and dies idle of it under \"wall\"", () =>
      Effect.gen(function*() {
        for (const idleClock of ["awake", "wall"] as const) {
          const { hand, registry } = yield* onHandClock({ idleTimeout: "30 minutes", idleClock })
          const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
          hand.awake(minutes(10))
          // Lunch: three hours of wall time, seconds of it counted by the monotonic clock.
          hand.sleep(hours(3), seconds(5))
          if (idleClock === "wall") {
            assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "idle")
            continue
          }
          const scope = yield* registry.resolve(token(credential))
          assert.strictEqual(scope.lastUsedAt, hand.wall())
          // Epoch milliseconds still: now plus the awake idle time left.
          assert.strictEqual(scope.idleExpiresAt, hand.wall() + minutes(30))
          hand.sleep(hours(1), 0)
          hand.awake(minutes(29))
          const info = Option.getOrThrow(yield* registry.get(credential.credentialId))
          assert.strictEqual(info.idleExpiresAt, hand.wall() + minutes(1))
          hand.awake(minutes(1) + 1)
          assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "idle")
        }
      }).pipe(Effect.scoped))

    it.effect("lifetimes count wall time, sleep included, under \"awake\"", () =>
      Effect.gen(function*() {
        const { hand, recorded, registry } = yield* onHandClock({
          idleTimeout: "30 minutes",
          maxLifetime: "2 hours",
          absoluteLifetime: "1 day"
        })
        const a = yield* registry.issue({ threadId: "a", providerInstanceId: "p" })
        hand.sleep(hours(2) + 1, seconds(1))
        assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "expired")
        const b = yield* registry.issue({ threadId: "b", providerInstanceId: "p" })
        assert.strictEqual(b.expiresAt, hand.wall() + hours(2))
        // Used every 20 awake minutes across sleeps, it reaches the absolute cap on the wall clock.
        for (let i = 0; i < 23; i++) {
          hand.sleep(minutes(40), 0)
          hand.awake(minutes(20))
          yield* registry.touch("b")
        }
        // A sleep past the cap, with awake idle time still left.
        hand.sleep(hours(1) + 1, 0)
        assert.strictEqual(yield* reasonOf(registry.resolve(token(b))), "expired")
        assert.deepStrictEqual(recorded.reasons(), ["expired", "expired"])
      }).pipe(Effect.scoped))

    it.effect("TestClock moves both clocks together: idle after the timeout, as before", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* TestClock.adjust(minutes(10))
        yield* registry.resolve(token(credential))
        yield* TestClock.adjust(minutes(10) + 1)
        assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "idle")
      }).pipe(Effect.provide(McpSessionRegistry.layer({ idleTimeout: "10 minutes" }))))
  })

  describe("reportPower", () => {
    it.effect("takes a reported sleep out of the idle time where the monotonic clock counts it", () =>
      Effect.gen(function*() {
        const { hand, registry } = yield* onHandClock({ idleTimeout: "30 minutes" })
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        const other = yield* registry.issue({ threadId: "u", providerInstanceId: "p" })
        hand.awake(minutes(20))
        // As on macOS or Windows: the monotonic clock counts the whole sleep.
        yield* registry.reportPower("suspend")
        yield* registry.reportPower("suspend")
        hand.sleep(hours(3), hours(3))
        yield* registry.reportPower("resume")
        yield* registry.reportPower("resume")
        const scope = yield* registry.resolve(token(credential))
        assert.strictEqual(scope.idleExpiresAt, hand.wall() + minutes(30))
        // Unused since before the sleep, `other` has the 10 awake minutes it had left.
        assert.strictEqual(Option.getOrThrow(yield* registry.get(other.credentialId)).idleExpiresAt, hand.wall() + minutes(10))
        hand.awake(minutes(10) + 1)
        assert.strictEqual(yield* reasonOf(registry.resolve(token(other))), "idle")
      }).pipe(Effect.scoped))

    it.effect("without a report, such a sleep counts; on Linux a report changes nothing", () =>
      Effect.gen(function*() {
        const unreported = yield* onHandClock({ idleTimeout: "30 minutes" })
        const a = yield* unreported.registry.issue({ threadId: "t", providerInstanceId: "p" })
        unreported.hand.sleep(hours(3), hours(3))
        assert.strictEqual(yield* reasonOf(unreported.registry.resolve(token(a))), "idle")

        // Linux: the monotonic clock stood still during the sleep; nothing is taken out twice.
        const linux = yield* onHandClock({ idleTimeout: "30 minutes" })
        const b = yield* linux.registry.issue({ threadId: "t", providerInstanceId: "p" })
        linux.hand.awake(minutes(20))
        yield* linux.registry.reportPower("suspend")
        linux.hand.sleep(hours(3), 0)
        yield* linux.registry.reportPower("resume")
        assert.strictEqual(
          Option.getOrThrow(yield* linux.registry.get(b.credentialId)).idleExpiresAt,
          linux.hand.wall() + minutes(10)
        )
        linux.hand.awake(minutes(10) + 1)
        assert.strictEqual(yield* reasonOf(linux.registry.resolve(token(b))), "idle")
      }).pipe(Effect.scoped))

    it.effect("is a no-op under \"wall\" and ignores anything but the two events", () =>
      Effect.gen(function*() {
        const { hand, registry } = yield* onHandClock({ idleTimeout: "30 minutes", idleClock: "wall" })
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* registry.reportPower("suspend")
        hand.sleep(hours(3), hours(3))
        yield* registry.reportPower("resume")
        yield* registry.reportPower("hibernate" as never)
        assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "idle")
      }).pipe(Effect.scoped))
  })

  // What applies to every store runs on both (idle is wall time on Redis, so the awake clock stays above).
  for (const store of liveStores) {
    describe(store.name, () => {
      describe("calls in flight", () => {
        it.effect("cannot go idle, and their end is a use at that instant", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
            yield* registry.resolve(token(credential))
            const end = yield* registry.beginCall(credential.credentialId)
            yield* store.advance(minutes(45))
            assert.strictEqual(yield* registry.sweep, 0)
            const during = Option.getOrThrow(yield* registry.get(credential.credentialId))
            // While in flight it cannot go idle: only the lifetime bounds it.
            assert.strictEqual(during.idleExpiresAt, during.expiresAt)
            end()
            end()
            yield* store.settle
            const after = Option.getOrThrow(yield* registry.get(credential.credentialId))
            assert.strictEqual(after.lastUsedAt, minutes(45))
            assert.strictEqual(after.idleExpiresAt, minutes(55))
            yield* store.advance(minutes(10) + 1)
            assert.strictEqual(yield* registry.sweep, 1)
          }).pipe(Effect.provide(store.layer({ idleTimeout: "10 minutes", sweepInterval: "1 day" }))))

        it.effect("each call counts: ending one twice does not end another", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
            const first = yield* registry.beginCall(credential.credentialId)
            const second = yield* registry.beginCall(credential.credentialId)
            yield* store.advance(minutes(5))
            first()
            first()
            yield* store.settle
            yield* store.advance(minutes(30))
            assert.strictEqual(yield* registry.sweep, 0)
            second()
            yield* store.settle
            yield* store.advance(minutes(10) + 1)
            assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "idle")
          }).pipe(Effect.provide(store.layer({ idleTimeout: "10 minutes", sweepInterval: "1 day" }))))

        it.effect("a call open past maxLifetime does not keep its credential, and its end revives nothing", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const recorded = recorder()
            yield* registry.onRevoke(recorded.hook)
            const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
            yield* store.advance(minutes(5))
            yield* registry.resolve(token(credential))
            const end = yield* registry.beginCall(credential.credentialId)
            // maxLifetime counts from the last use, which is the call's start.
            yield* store.advance(hours(1) + 1)
            assert.isTrue(Option.isNone(yield* registry.get(credential.credentialId)))
            end()
            yield* store.settle
            assert.isTrue(Option.isNone(yield* registry.get(credential.credentialId)))
            assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "expired")
            assert.deepStrictEqual(recorded.reasons(), ["expired"])
          }).pipe(Effect.provide(store.layer({ idleTimeout: "10 minutes", maxLifetime: "1 hour" }))))

        it.effect("the absolute cap holds over a call in flight; ending a revoked one is harmless", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const a = yield* registry.issue({ threadId: "a", providerInstanceId: "p" })
            const endA = yield* registry.beginCall(a.credentialId)
            for (let i = 0; i < 7; i++) {
              yield* store.advance(minutes(9))
              yield* registry.touch("a")
            }
            assert.strictEqual(yield* reasonOf(registry.resolve(token(a))), "expired")
            endA()
            yield* store.settle
            const b = yield* registry.issue({ threadId: "b", providerInstanceId: "p" })
            const endB = yield* registry.beginCall(b.credentialId)
            assert.isTrue(yield* registry.revoke(b.credentialId))
            endB()
            yield* store.settle
            assert.strictEqual(yield* reasonOf(registry.resolve(token(b))), "revoked")
            // Unknown ids and dead credentials get an end that does nothing.
            const none = yield* registry.beginCall("cred_nope")
            none()
            none()
            yield* store.settle
          }).pipe(
            Effect.provide(store.layer({ idleTimeout: "10 minutes", absoluteLifetime: "1 hour" }))
          ))
      })

      describe("slideOnUse: false", () => {
        it.effect("resolves succeed and slide nothing; calls keep nothing alive; touch does", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const used = yield* registry.issue({ threadId: "used", providerInstanceId: "p" })
            const touched = yield* registry.issue({ threadId: "touched", providerInstanceId: "p" })
            const end = yield* registry.beginCall(used.credentialId)
            for (let i = 0; i < 3; i++) {
              yield* store.advance(minutes(3))
              const scope = yield* registry.resolve(token(used))
              assert.strictEqual(scope.lastUsedAt, 0)
              assert.strictEqual(scope.expiresAt, used.expiresAt)
              assert.strictEqual(scope.idleExpiresAt, minutes(10))
              assert.strictEqual(yield* registry.touch("touched"), 1)
            }
            yield* store.advance(minutes(1) + 1)
            end()
            yield* store.settle
            assert.strictEqual(yield* reasonOf(registry.resolve(token(used))), "idle")
            const scope = yield* registry.resolve(token(touched))
            assert.strictEqual(scope.lastUsedAt, minutes(9))
            assert.strictEqual(scope.expiresAt, minutes(9) + hours(1))
          }).pipe(
            Effect.provide(store.layer({ idleTimeout: "10 minutes", maxLifetime: "1 hour", slideOnUse: false }))
          ))
      })

      describe("replace", () => {
        it.effect("a replacing issue replaces every live credential of the thread and provider instance", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            const recorded = recorder()
            yield* registry.onRevoke(recorded.hook)
            const older = yield* registry.issue({ threadId: "t", providerInstanceId: "p", replace: false })
            const old = yield* registry.issue({ threadId: "t", providerInstanceId: "p", replace: false })
            const otherProvider = yield* registry.issue({ threadId: "t", providerInstanceId: "q" })
            const otherThread = yield* registry.issue({ threadId: "u", providerInstanceId: "p" })
            const fresh = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
            yield* store.settle
            assert.sameMembers(recorded.events.map((e) => e.credential.credentialId), [older.credentialId, old.credentialId])
            assert.deepStrictEqual(recorded.reasons(), ["replaced", "replaced"])
            for (const gone of [older, old]) assert.strictEqual(yield* reasonOf(registry.resolve(token(gone))), "revoked")
            const live = (yield* registry.list).map((info) => info.credentialId)
            assert.sameMembers(live, [otherProvider.credentialId, otherThread.credentialId, fresh.credentialId])
          }).pipe(Effect.provide(store.layer())))

        it.effect("the pair's credentials count as freed against the thread cap", () =>
          Effect.gen(function*() {
            const registry = yield* Registry
            yield* registry.issue({ threadId: "t", providerInstanceId: "p", replace: false })
            yield* registry.issue({ threadId: "t", providerInstanceId: "p", replace: false })
            const full = yield* Effect.flip(registry.issue({ threadId: "t", providerInstanceId: "q" }))
            assert.strictEqual(full._tag, "RegistryFull")
            yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
            assert.strictEqual((yield* registry.list).length, 1)
          }).pipe(Effect.provide(store.layer({ maxCredentialsPerThread: 2 }))))
      })
    })
  }

  describe("ids", () => {
    it.effect("never contain `__`, nor begin or end their random part with `_`", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        for (let i = 0; i < 4_000; i++) {
          const issued = yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" })
          for (const id of [issued.credentialId, issued.providerSessionId]) {
            assert.match(id, /^(cred|psess)_[A-Za-z0-9-](?:[A-Za-z0-9-]|_(?!_))*[A-Za-z0-9-]$/, id)
            assert.notInclude(id, "__")
          }
        }
      }).pipe(Effect.provide(McpSessionRegistry.layer())))
  })

  describe("messages", () => {
    it("count in the singular for one", () => {
      const one = new McpSessionRegistry.RegistryFull({ scope: "registry", limit: 1, threadId: "t" })
      assert.strictEqual(one.message, "The registry holds its maximum of 1 live credential")
      const two = new McpSessionRegistry.RegistryFull({ scope: "thread", limit: 2, threadId: "t" })
      assert.strictEqual(two.message, "Thread \"t\" holds its maximum of 2 live credentials")
    })
  })

  describe("refusals in the log", () => {
    const capture = capturingLogs

    it.effect("one warning per once-valid credential, however often refused; never the token or digest", () => {
      const logged = capture()
      return Effect.gen(function*() {
        const registry = yield* Registry
        const revoked = yield* registry.issue({ threadId: "thread-r", providerInstanceId: "claude" })
        const idle = yield* registry.issue({ threadId: "thread-i", providerInstanceId: "codex" })
        const replaced = yield* registry.issue({ threadId: "thread-x", providerInstanceId: "gemini" })
        yield* registry.issue({ threadId: "thread-x", providerInstanceId: "gemini" })
        yield* registry.revoke(revoked.credentialId)
        yield* TestClock.adjust(minutes(5))
        yield* registry.touch("thread-r")
        yield* registry.touch("thread-x")
        yield* TestClock.adjust(minutes(6))
        for (let i = 0; i < 50; i++) {
          for (const c of [revoked, idle, replaced]) yield* Effect.flip(registry.resolve(token(c)))
        }
        yield* Effect.yieldNow
        const warnings = logged.lines.filter((line) => line.level === "Warn")
        assert.strictEqual(warnings.length, 3)
        const byId = new Map(warnings.map((line) => [line.annotations["credentialId"], line]))
        for (const [c, reason, leftAs] of [[revoked, "revoked", "revoked"], [idle, "idle", "idle"], [replaced, "revoked", "replaced"]] as const) {
          const line = byId.get(c.credentialId)!
          assert.isDefined(line, c.credentialId)
          assert.include(line.text, c.credentialId)
          assert.include(line.text, c.threadId)
          assert.include(line.text, c.providerInstanceId)
          assert.include(line.text, reason)
          assert.strictEqual(line.annotations["threadId"], c.threadId)
          assert.strictEqual(line.annotations["providerInstanceId"], c.providerInstanceId)
          assert.strictEqual(line.annotations["reason"], reason)
          assert.strictEqual(line.annotations["leftAs"], leftAs)
        }
        const everything = JSON.stringify(logged.lines)
        const raw = logged.lines.map((line) => `${line.text} ${Object.values(line.annotations).join(" ")}`).join("\n")
        for (const c of [revoked, idle, replaced]) {
          assert.notInclude(everything, token(c))
          assert.notInclude(everything, token(c).slice(8, 40))
          // The Redis store's key and the memory store's.
          for (const digest of [BearerToken.digest(token(c)), BearerToken.lookupKey(token(c))]) {
            for (const form of [digest, Buffer.from(digest, "binary").toString("hex"), Buffer.from(digest, "binary").toString("base64url")]) {
              assert.notInclude(raw, form)
              assert.notInclude(everything, form)
            }
          }
        }
      }).pipe(Effect.provide(McpSessionRegistry.layer({ idleTimeout: "10 minutes" }).pipe(Layer.provide(logged.layer))))
    })

    it.effect("a spray of 100,000 unknown tokens writes a few summary lines and no token", () => {
      const logged = capture()
      return Effect.gen(function*() {
        const registry = yield* Registry
        const live = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        const real = token(live)
        // Well-formed tokens of this format that the registry never issued.
        const sprayed: Array<string> = []
        for (let i = 0; i < 5; i++) {
          const other = yield* registry.issue({ threadId: `spray-${i}`, providerInstanceId: "p" })
          sprayed.push(token(other))
        }
        yield* registry.revokeAll
        const fresh = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* TestClock.adjust(hours(2))
        yield* Effect.yieldNow
        logged.lines.length = 0
        for (let i = 0; i < 100_000; i++) {
          const candidate = i % 10 === 0 ? `garbage-${i}` : sprayed[i % sprayed.length]!
          yield* Effect.flip(registry.resolve(candidate))
          if (i === 50_000) yield* TestClock.adjust(seconds(30))
        }
        yield* TestClock.adjust(seconds(31))
        yield* registry.sweep
        yield* registry.sweep
        yield* Effect.yieldNow
        const lines = logged.lines
        assert.isAtLeast(lines.length, 2)
        assert.isAtMost(lines.length, 3)
        assert.include(lines[0]!.text, "1 bearer token that was never valid")
        const total = lines.reduce(
          (sum, line) => sum + Number(line.annotations["unknown"]) + Number(line.annotations["malformed"]),
          0
        )
        assert.strictEqual(total, 100_000)
        const everything = JSON.stringify(lines)
        for (const t of [real, token(fresh), ...sprayed]) assert.notInclude(everything, t.slice(8, 40))
      }).pipe(
        Effect.provide(
          McpSessionRegistry.layer({ tombstoneRetention: "1 hour", sweepInterval: "1 day" }).pipe(
            Layer.provide(logged.layer)
          )
        )
      )
    })
  })

  describe("config", () => {
    it.effect.each([
      [{ idleClock: "monotonic" }, "idleClock", "\"monotonic\""],
      [{ idleClock: 1 }, "idleClock", "1"],
      [{ slideOnUse: "yes" }, "slideOnUse", "\"yes\""],
      [{ slideOnUse: 0 }, "slideOnUse", "0"]
    ] as const)("rejects %j naming the option and the value", ([options, option, value]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(McpSessionRegistry.make(options as never))
        assert.strictEqual(error._tag, "RegistryConfigError")
        assert.strictEqual(error.option, option)
        assert.strictEqual(error.value, value)
        assert.include(error.message, option)
      }).pipe(Effect.scoped))

    const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

    it.effect("layerConfig reads both options from the environment", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* TestClock.adjust(minutes(5))
        assert.strictEqual((yield* registry.resolve(token(credential))).lastUsedAt, 0)
      }).pipe(Effect.provide(McpSessionRegistry.layerConfig.pipe(Layer.provide(fromEnv({
        MCP_SESSION_REGISTRY_IDLE_CLOCK: "wall",
        MCP_SESSION_REGISTRY_SLIDE_ON_USE: "false"
      }))))))

    it.effect.each([
      ["MCP_SESSION_REGISTRY_IDLE_CLOCK", "sometimes", "idleClock", "\"sometimes\""],
      ["MCP_SESSION_REGISTRY_SLIDE_ON_USE", "1", "slideOnUse", "\"1\""],
      ["MCP_SESSION_REGISTRY_SLIDE_ON_USE", "no", "slideOnUse", "\"no\""]
    ] as const)("layerConfig names the option and value of a bad %s", ([name, text, option, value]) =>
      Effect.gen(function*() {
        const error = yield* Layer.build(McpSessionRegistry.layerConfig).pipe(
          Effect.scoped,
          Effect.provide(fromEnv({ [name]: text })),
          Effect.flip
        )
        assert.strictEqual(error._tag, "RegistryConfigError")
        assert.strictEqual(error.option, option)
        assert.strictEqual(error.value, value)
      }))
  })
})
