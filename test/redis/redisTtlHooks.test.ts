/**
 * Redis TTLs vs the sweeper (from a review repro): a live credential's record
 * had the TTL "deadline + tombstoneRetention" in real time, so when the
 * sweeper's next turn came later than that (tombstoneRetention <
 * sweepInterval, or every replica down a while), Redis forgot the record
 * first: the sweep found only a stale index entry, and no hook ever ran for
 * that credential. Records now outlast their deadline by the retention plus
 * two sweep intervals.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scope } from "effect"
import { createClient } from "redis"
import { McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { freshPrefix, redisReplica, redisServer } from "../support/stores.ts"

const server = redisServer()

const replica = (options: McpSessionRegistry.RedisOptions, scope: Scope.Scope) => redisReplica(server, options, scope)

describe("review: Redis TTL vs the sweeper", () => {
  it.live("an idle credential's hooks run once even when the sweep comes after tombstoneRetention", () =>
    Effect.gen(function*() {
      const events: Array<Revocation.RevocationEvent> = []
      const registry = yield* replica({
        idleTimeout: "300 millis",
        tombstoneRetention: "100 millis",
        sweepInterval: "1 day",
        hooks: [(event) => Effect.sync(() => void events.push(event))]
      }, yield* Effect.scope)
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      // The sweeper's turn comes 0.6 s after the idle deadline (on real time: Redis TTLs are real time).
      yield* Effect.sleep("900 millis")
      yield* registry.sweep
      assert.deepStrictEqual(events.map((e) => [e.credential.credentialId, e.reason]), [[credential.credentialId, "idle"]])
    }).pipe(Effect.scoped))

  it.effect("a live record's TTL is its deadline plus the retention plus two sweep intervals", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      const registry = yield* replica({
        keyPrefix,
        idleTimeout: "60 seconds",
        tombstoneRetention: "1 second",
        sweepInterval: "30 seconds"
      }, yield* Effect.scope)
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      const ttl = yield* Effect.promise(async () => {
        const client = createClient({ url: server.current().url })
        await client.connect()
        try {
          return await client.pTTL(`{${keyPrefix}}:c:${credential.credentialId.slice("cred_".length)}`)
        } finally {
          await client.close()
        }
      })
      // Real time passes between the write and the read: allow a few seconds of it.
      assert.isAtMost(ttl, 60_000 + 1_000 + 2 * 30_000)
      assert.isAbove(ttl, 60_000 + 1_000 + 2 * 30_000 - 5_000)
    }).pipe(Effect.scoped))
})
