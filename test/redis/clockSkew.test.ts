/**
 * Replicas whose wall clocks disagree (from a review repro): one ahead by
 * two seconds, against a 4 s idle timeout. A use on the other replica does not
 * slide past the ahead replica's stamps until its own clock catches up, and
 * then, still within the index horizon, renews only the credential's own
 * TTL: the thread's index, set when the credential was issued, ran out
 * first, and `revokeThread` missed a live credential. The shared keys now
 * keep a margin of the idle timeout, so a skew short of it cannot outrun
 * them. Redis TTLs count real time, so this test lets real time pass.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Option, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import { McpSessionRegistry } from "../../src/index.ts"
import { freshPrefix, redisReplica, redisServer } from "../support/stores.ts"

const server = redisServer()

// A clock `ms` ahead of `base`.
const ahead = (base: Clock.Clock, ms: number): Clock.Clock =>
  Object.assign(Object.create(base) as Clock.Clock, {
    currentTimeMillisUnsafe: () => base.currentTimeMillisUnsafe() + ms,
    currentTimeMillis: Effect.sync(() => base.currentTimeMillisUnsafe() + ms),
    currentTimeNanosUnsafe: () => base.currentTimeNanosUnsafe() + BigInt(ms) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => base.currentTimeNanosUnsafe() + BigInt(ms) * 1_000_000n)
  })

describe("Redis store: replicas whose clocks disagree", () => {
  it.live("revokeThread on one replica still finds a credential issued on another two seconds ahead", () =>
    Effect.gen(function*() {
      const options: McpSessionRegistry.RedisOptions = {
        keyPrefix: freshPrefix(),
        idleTimeout: "4 seconds",
        tombstoneRetention: "1 millis",
        sweepInterval: "100 millis"
      }
      // Both read one TestClock, which real time does not move: only the
      // skew and the uses below decide what each replica stamps.
      const test = yield* TestClock.make()
      const onTest = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Clock.Clock, test)
      const scopeA = yield* Scope.make()
      const a = yield* redisReplica(server, options, scopeA).pipe(Effect.provideService(Clock.Clock, ahead(test, 2000)))
      const b = yield* onTest(redisReplica(server, options, yield* Effect.scope))
      const credential = yield* a.issue({ threadId: "t", providerInstanceId: "p" })
      // A leaves (a rolling deploy): its sweeper, a second ahead, would
      // otherwise take the credential for idle before B's clock says so.
      yield* Scope.close(scopeA, Exit.void)
      // B's clock passes A's stamp 2.4 s later and keeps the credential in use.
      yield* Effect.sleep("2400 millis")
      yield* onTest(test.adjust("2400 millis"))
      yield* b.resolve(Redacted.value(credential.token))
      // Past the thread index's first TTL, well before the credential's deadline on B.
      yield* Effect.sleep("3600 millis")
      yield* onTest(test.adjust("3600 millis"))
      assert.isTrue(Option.isSome(yield* b.get(credential.credentialId)), "the credential is live on B")
      assert.strictEqual(yield* b.revokeThread("t"), 1)
      // Refused (as unknown: the tombstone's 1 ms retention is over).
      const refused = yield* Effect.flip(b.resolve(Redacted.value(credential.token)))
      assert.strictEqual(refused._tag, "InvalidCredential")
    }).pipe(Effect.scoped), 20_000)
})
