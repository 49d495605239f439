import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { NodeRedis } from "@effect/platform-node"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { McpSessionRegistry } from "../../src/index.ts"
import { startRedisServer, type RedisServer } from "../support/redis.ts"

let server: RedisServer
beforeAll(async () => { server = await startRedisServer() })
afterAll(async () => { await server?.stop() })

describe("smoke", () => {
  it.effect("issue/resolve/revoke", () =>
    Effect.gen(function*() {
      const r = yield* McpSessionRegistry.McpSessionRegistry
      const c = yield* r.issue({ threadId: "t", providerInstanceId: "p", capabilities: ["a"] })
      const s = yield* r.resolve(Redacted.value(c.token))
      assert.strictEqual(s.credentialId, c.credentialId)
      assert.deepStrictEqual(s.capabilities, ["a"])
      yield* TestClock.adjust(1000)
      const s2 = yield* r.resolve(Redacted.value(c.token))
      assert.strictEqual(s2.lastUsedAt, 1000)
      assert.strictEqual((yield* r.list).length, 1)
      assert.isTrue(yield* r.revoke(c.credentialId))
      const e = yield* Effect.flip(r.resolve(Redacted.value(c.token)))
      assert.strictEqual(e._tag === "InvalidCredential" && e.reason, "revoked")
    }).pipe(Effect.provide(Layer.suspend(() => McpSessionRegistry.layerRedis({ keyPrefix: "smoke" }).pipe(Layer.provide(NodeRedis.layer({ url: server.url })))))))
})
