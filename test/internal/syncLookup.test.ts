import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { Credential, McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { syncLookup } from "../../src/internal/syncLookup.ts"

const minutes = (n: number) => n * 60_000

describe("syncLookup", () => {
  it.effect("looks a token up without a fiber, as resolve does", () =>
    Effect.scoped(Effect.gen(function*() {
      const service = yield* McpSessionRegistry.make({ idleTimeout: "10 minutes" })
      const sync = syncLookup(service)
      assert.isDefined(sync)
      const credential = yield* service.issue({ threadId: "t", providerInstanceId: "codex" })
      yield* TestClock.adjust(minutes(5))
      const found = sync!.lookup(Redacted.value(credential.token))
      assert.notInstanceOf(found, Credential.InvalidCredential)
      assert.strictEqual((found as Credential.CredentialScope).credentialId, credential.credentialId)
      // A use, as through `resolve`: the idle clock restarted at 5 minutes.
      assert.strictEqual((found as Credential.CredentialScope).lastUsedAt, minutes(5))
      const refused = sync!.lookup("not a token")
      assert.instanceOf(refused, Credential.InvalidCredential)
      assert.strictEqual((refused as Credential.InvalidCredential).reason, "malformed")
    })))

  it.effect("starts the hooks of a credential it reclaims exactly once", () =>
    Effect.gen(function*() {
      const events: Array<Revocation.RevocationEvent> = []
      const hook: Revocation.RevocationHook = (event) => Effect.sync(() => void events.push(event))
      yield* Effect.scoped(Effect.gen(function*() {
        const service = yield* McpSessionRegistry.make({ idleTimeout: "1 minute", sweepInterval: "1 hour", hooks: [hook] })
        const sync = syncLookup(service)!
        const credential = yield* service.issue({ threadId: "t", providerInstanceId: "codex" })
        yield* TestClock.adjust(minutes(2))
        const token = Redacted.value(credential.token)
        assert.strictEqual((sync.lookup(token) as Credential.InvalidCredential).reason, "idle")
        assert.strictEqual((sync.lookup(token) as Credential.InvalidCredential).reason, "idle")
        // The hooks run in the registry's fibers: let them.
        yield* Effect.yieldNow
        assert.deepStrictEqual(events.map((event) => event.reason), ["idle"])
      }))
      // The shutdown found nothing left to revoke.
      assert.deepStrictEqual(events.map((event) => event.reason), ["idle"])
    }))

  it("has no path for a service it did not build", () => {
    assert.isUndefined(syncLookup({}))
  })

  it.effect("reads the monotonic clock once a second of wall time, not once a lookup", () =>
    Effect.gen(function*() {
      const base = yield* Clock.Clock
      let wall = 1_000_000
      let monotonic = 5_000n * 1_000_000n
      let readings = 0
      const clock: Clock.Clock = {
        currentTimeMillis: Effect.sync(() => wall),
        currentTimeNanosUnsafe: () => BigInt(wall) * 1_000_000n,
        currentTimeNanos: Effect.sync(() => BigInt(wall) * 1_000_000n),
        monotonicTimeNanos: Effect.sync(() => monotonic),
        sleep: (duration) => base.sleep(duration),
        currentTimeMillisUnsafe: () => wall,
        monotonicTimeNanosUnsafe: () => {
          readings++
          return monotonic
        }
      }
      yield* Effect.scoped(Effect.gen(function*() {
        const service = yield* McpSessionRegistry.make({ idleTimeout: "1 minute", sweepInterval: "1 hour" })
        const sync = syncLookup(service)!
        const credential = yield* service.issue({ threadId: "t", providerInstanceId: "codex" })
        const token = Redacted.value(credential.token)
        readings = 0
        for (let i = 0; i < 1000; i++) assert.notInstanceOf(sync.lookup(token), Credential.InvalidCredential)
        assert.strictEqual(readings, 0)
        // Past the window the clock is read again.
        wall += 1001
        monotonic += 1_001_000_000n
        assert.notInstanceOf(sync.lookup(token), Credential.InvalidCredential)
        assert.strictEqual(readings, 1)
        // A sleep: hours of wall time, seconds of awake time. Read afresh, it
        // leaves the credential alive under the awake clock.
        wall += 3 * 3_600_000
        monotonic += 2_000_000_000n
        const scope = sync.lookup(token)
        assert.notInstanceOf(scope, Credential.InvalidCredential)
        assert.strictEqual(readings, 2)
        // Thirty awake seconds later, idle after a minute of awake time, not of wall time.
        wall += 30_000
        monotonic += 30_000_000_000n
        assert.notInstanceOf(sync.lookup(token), Credential.InvalidCredential)
        wall += 61_000
        monotonic += 61_000_000_000n
        assert.strictEqual((sync.lookup(token) as Credential.InvalidCredential).reason, "idle")
      }).pipe(Effect.provideService(Clock.Clock, clock)))
    }))

  it.effect("lookupCall finds the credential once and keeps it from going idle until the call ends", () =>
    Effect.scoped(Effect.gen(function*() {
      const service = yield* McpSessionRegistry.make({ idleTimeout: "1 minute", sweepInterval: "1 hour" })
      const sync = syncLookup(service)!
      const credential = yield* service.issue({ threadId: "t", providerInstanceId: "codex" })
      const token = Redacted.value(credential.token)
      const call = sync.lookupCall(token)
      assert.notInstanceOf(call, Credential.InvalidCredential)
      const { end, scope } = call as { scope: Credential.CredentialScope; end: () => void }
      assert.strictEqual(scope.credentialId, credential.credentialId)
      // Five idle timeouts into the call, still live.
      yield* TestClock.adjust(minutes(5))
      assert.isTrue(Option.isSome(yield* service.get(credential.credentialId)))
      end()
      end()
      // The end was a use: a minute from it, not from the lookup.
      yield* TestClock.adjust(minutes(1) - 1000)
      assert.notInstanceOf(sync.lookup(token), Credential.InvalidCredential)
      yield* TestClock.adjust(minutes(2))
      assert.strictEqual((sync.lookupCall(token) as Credential.InvalidCredential).reason, "idle")
      assert.strictEqual((sync.lookupCall("nope") as Credential.InvalidCredential).reason, "malformed")
    })))
})
