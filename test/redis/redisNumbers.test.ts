/**
 * Non-integer milliseconds on the Redis store (from a review repro): the
 * library reads whole numbers only, so a fractional duration option or a
 * Clock with sub-millisecond precision once broke every call (settings) or
 * one credential for good (its record). Now the registry floors its clock,
 * rounds its settings, and the scripts read a record with fractional times
 * (as that version wrote them) and refuse one they cannot read, never raising.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted, Scope } from "effect"
import { createClient } from "redis"
import { TestClock } from "effect/testing"
import { McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { freshPrefix, redisReplica, redisServer, settleRedis } from "../support/stores.ts"

const server = redisServer()
const token = (c: { readonly token: Redacted.Redacted<string> }) => Redacted.value(c.token)

const replica = (options: McpSessionRegistry.RedisOptions, scope: Scope.Scope) => redisReplica(server, options, scope)

describe("review: non-integer milliseconds on Redis", () => {
  it.effect("a fractional idleTimeout (accepted by RegistryConfig) still issues and resolves", () =>
    Effect.gen(function*() {
      const registry = yield* replica({ idleTimeout: Duration.micros(90_000_500n) }, yield* Effect.scope)
      const exit = yield* Effect.exit(registry.issue({ threadId: "t", providerInstanceId: "p" }))
      assert.strictEqual(exit._tag, "Success", JSON.stringify(exit))
    }).pipe(Effect.scoped))

  it.effect("a Clock with sub-millisecond time: a live credential keeps resolving", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust(Duration.micros(1_000_500n))
      const registry = yield* replica({}, yield* Effect.scope)
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      yield* registry.resolve(token(credential))
      yield* TestClock.adjust(Duration.micros(1_000_250n))
      yield* registry.resolve(token(credential)) // slides: the fast path writes now's text verbatim
      yield* TestClock.adjust("1 second")
      const exit = yield* Effect.exit(registry.resolve(token(credential)))
      yield* settleRedis
      assert.strictEqual(exit._tag, "Success", JSON.stringify(exit))
    }).pipe(Effect.scoped))

  it.effect("a record with fractional times (as an earlier version wrote them) resolves, and its revoke runs the hooks", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      const events: Array<Revocation.RevocationEvent> = []
      const registry = yield* replica({
        keyPrefix,
        hooks: [(event) => Effect.sync(() => void events.push(event))]
      }, yield* Effect.scope)
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      yield* rewrite(keyPrefix, credential.credentialId, fractionalLastUse)
      yield* TestClock.adjust("1 second")
      const scope = yield* registry.resolve(token(credential))
      assert.strictEqual(scope.credentialId, credential.credentialId)
      assert.isTrue(Number.isInteger(scope.lastUsedAt))
      assert.isTrue(yield* registry.revoke(credential.credentialId))
      assert.deepStrictEqual(events.map((e) => [e.credential.credentialId, e.reason]), [[credential.credentialId, "revoked"]])
    }).pipe(Effect.scoped))

  it.effect("a record it cannot read is refused as unknown, not a store failure", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      const registry = yield* replica({ keyPrefix }, yield* Effect.scope)
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      yield* rewrite(keyPrefix, credential.credentialId, garbled)
      const error = yield* Effect.flip(registry.resolve(token(credential)))
      assert.strictEqual(error._tag, "InvalidCredential")
      assert.strictEqual((error as { readonly reason: string }).reason, "unknown")
      assert.isFalse(yield* registry.revoke(credential.credentialId))
      yield* registry.sweep
    }).pipe(Effect.scoped))
})

// Lua run on the record `{P}:c:<id>` (KEYS[1]), keeping its TTL.
const fractionalLastUse = `
local s = redis.call("GET", KEYS[1])
local v, a, u, rest = string.match(s, "^(.-)|(%d+)|(%d+)|(.*)$")
redis.call("SET", KEYS[1], v .. "|" .. a .. ".25|" .. u .. ".5|" .. rest, "KEEPTTL")
`
const garbled = `
local s = redis.call("GET", KEYS[1])
redis.call("SET", KEYS[1], string.sub(s, 1, 22) .. "|x|y|", "KEEPTTL")
`

const rewrite = (keyPrefix: string, credentialId: string, lua: string) =>
  Effect.promise(async () => {
    const client = createClient({ url: server.current().url })
    await client.connect()
    try {
      await client.sendCommand(["EVAL", lua, "1", `{${keyPrefix}}:c:${credentialId.slice("cred_".length)}`])
    } finally {
      await client.close()
    }
  })
