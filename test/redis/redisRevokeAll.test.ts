/**
 * revokeAll and revokeOnShutdown past stale index entries (from a review
 * repro): they stopped after a batch that removed nothing, so a batch of
 * 1,000 stale deadline-index entries (records Redis already forgot by TTL)
 * ahead of live credentials ended the loop with those credentials still valid.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import { createClient } from "redis"
import { McpSessionRegistry } from "../../src/index.ts"
import { freshPrefix, redisReplica, redisServer } from "../support/stores.ts"

const server = redisServer()
const replica = (options: McpSessionRegistry.RedisOptions, scope: Scope.Scope) => redisReplica(server, options, scope)

describe("review: revokeAll past stale index entries", () => {
  it.effect("revokes every live credential even behind 1,000 stale deadline-index entries", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      const registry = yield* replica({ keyPrefix, sweepInterval: "1 day" }, yield* Effect.scope)
      const live = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      yield* staleEntries(keyPrefix, 1000)
      const revoked = yield* registry.revokeAll
      assert.strictEqual(revoked, 1)
      assert.strictEqual((yield* Effect.flip(registry.resolve(Redacted.value(live.token)))).reason, "revoked")
    }).pipe(Effect.scoped))

  it.effect("revokeOnShutdown revokes every live credential even behind 2,500 stale entries", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      const closing = yield* Scope.make()
      const a = yield* replica({ keyPrefix, sweepInterval: "1 day", revokeOnShutdown: true }, closing)
      const b = yield* replica({ keyPrefix, sweepInterval: "1 day" }, yield* Effect.scope)
      const live = yield* a.issue({ threadId: "t", providerInstanceId: "p" })
      yield* staleEntries(keyPrefix, 2500)
      yield* Scope.close(closing, Exit.void)
      assert.strictEqual((yield* Effect.flip(b.resolve(Redacted.value(live.token)))).reason, "revoked")
    }).pipe(Effect.scoped))
})

// What records forgotten by their TTL before a sweep leave in {P}:d: ids with
// old deadlines (so they sort first) and no record.
const staleEntries = (keyPrefix: string, count: number) =>
  Effect.promise(async () => {
    const client = createClient({ url: server.current().url })
    await client.connect()
    const args: Array<string> = []
    for (let i = 0; i < count; i++) args.push("-1", `stale${String(i).padStart(7, "0")}`)
    await client.sendCommand(["ZADD", `{${keyPrefix}}:d`, ...args])
    await client.close()
  })
