/**
 * Removals whose reply never came in time (from an adversarial review): a
 * script sent to a frozen Redis runs when it thaws, after its call failed
 * with `StoreUnavailable`. The removal it made must still be honoured on the
 * replica that sent it: its local cache must not keep serving the token once
 * a revoke has returned there, and its hooks (run nowhere else) must run once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import type { Revocation } from "../../src/index.ts"
import { freshPrefix, redisReplica, redisServer } from "../support/stores.ts"

const server = redisServer()
const token = (c: { readonly token: Redacted.Redacted<string> }) => Redacted.value(c.token)
const pause = (millis: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))

/** Runs `effect` against a frozen Redis, expecting it to time out, then thaws and waits for the script to run. */
const whileFrozen = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    server.current().freeze()
    const error = yield* Effect.flip(effect).pipe(Effect.ensuring(Effect.sync(() => server.current().thaw())))
    assert.strictEqual((error as { readonly _tag: string })._tag, "StoreUnavailable")
    yield* pause(300)
  })

describe("review: removals applied after their call timed out", () => {
  it.live("a revoke retried after a timeout drops the local cache's entry, as any revoke that returned", () =>
    Effect.gen(function*() {
      const registry = yield* redisReplica(server, {
        keyPrefix: freshPrefix(),
        storeTimeout: "300 millis",
        localCache: { maxStaleness: "1 hour" }
      }, yield* Effect.scope)
      const one = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      const two = yield* registry.issue({ threadId: "u", providerInstanceId: "p" })
      yield* registry.resolve(token(one))
      yield* registry.resolve(token(two))

      yield* whileFrozen(registry.revoke(one.credentialId))
      // The retry answers: the first attempt applied on the thaw.
      assert.isFalse(yield* registry.revoke(one.credentialId))
      assert.strictEqual((yield* Effect.flip(registry.resolve(token(one)))).reason, "revoked")

      yield* whileFrozen(registry.revokeThread("u"))
      assert.strictEqual(yield* registry.revokeThread("u"), 0)
      assert.strictEqual((yield* Effect.flip(registry.resolve(token(two)))).reason, "revoked")
    }).pipe(Effect.scoped))
})

describe("review: hooks of removals whose reply came after storeTimeout", () => {
  it.live("a revoke and a replacing issue that timed out and applied on the thaw run their hooks once", () =>
    Effect.gen(function*() {
      const events: Array<Revocation.RevocationEvent> = []
      const heard: Array<Revocation.RevocationEvent> = []
      const registry = yield* redisReplica(server, {
        keyPrefix: freshPrefix(),
        storeTimeout: "300 millis",
        hooks: [(event) => Effect.sync(() => void events.push(event))]
      }, yield* Effect.scope)
      yield* registry.onRevoke((event) => Effect.sync(() => void heard.push(event)))
      const seen = () => events.map((e) => [e.credential.credentialId, e.reason])
      const revoked = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      const replaced = yield* registry.issue({ threadId: "u", providerInstanceId: "p" })

      yield* whileFrozen(registry.revoke(revoked.credentialId))
      assert.isFalse(yield* registry.revoke(revoked.credentialId))
      assert.deepStrictEqual(seen(), [[revoked.credentialId, "revoked"]])

      // Its replacement was never issued as far as the host knows, and is withdrawn.
      yield* whileFrozen(registry.issue({ threadId: "u", providerInstanceId: "p" }))
      assert.strictEqual((yield* Effect.flip(registry.resolve(token(replaced)))).reason, "revoked")
      const reasons = seen().slice(1)
      assert.deepStrictEqual(reasons.filter(([id]) => id === replaced.credentialId), [[replaced.credentialId, "replaced"]])
      assert.deepStrictEqual(reasons.filter(([id]) => id !== replaced.credentialId).map(([, reason]) => reason), ["revoked"])
      assert.deepStrictEqual(heard.map((e) => [e.credential.credentialId, e.reason]), seen())
    }).pipe(Effect.scoped))
})
