/**
 * Redis gone at shutdown, and issues refused mid-outage: closing a registry
 * never waits for a Redis that is not there, and an issue the caller was told
 * failed leaves no credential behind once Redis answers again.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted, Scope } from "effect"
import { McpSessionRegistry } from "../../src/index.ts"
import { createRegistry, reveal } from "../../src/promise/index.ts"
import { startRedisServer } from "../support/redis.ts"
import { freshPrefix } from "../support/stores.ts"

const storeTimeout = 300

const withServer = <A>(use: (server: Awaited<ReturnType<typeof startRedisServer>>) => Promise<A>) =>
  Effect.promise(async () => {
    const server = await startRedisServer()
    try {
      return await use(server)
    } finally {
      server.thaw()
      await server.stop()
    }
  })

const layerOn = (url: string) =>
  McpSessionRegistry.layerRedis({ keyPrefix: freshPrefix(), storeTimeout: `${storeTimeout} millis` }).pipe(
    Layer.provide(NodeRedis.layer({ url }))
  )

describe("McpSessionRegistry on Redis: shutdown and refused issues", () => {
  // Redis stopped refuses connections; frozen, it accepts and never answers.
  const outages: ReadonlyArray<readonly [string, (server: Awaited<ReturnType<typeof startRedisServer>>) => unknown]> = [
    ["stopped", (server) => server.kill()],
    ["frozen", (server) => server.freeze()]
  ]
  for (const [outage, begin] of outages) {
    it.live(`layerRedis closes within about storeTimeout once a call timed out with Redis ${outage}`, () =>
      withServer(async (server) => {
        const scope = Effect.runSync(Scope.make())
        const context = await Effect.runPromise(Layer.buildWithScope(layerOn(server.url), scope))
        const registry = context.mapUnsafe.get(McpSessionRegistry.McpSessionRegistry.key) as McpSessionRegistry.McpSessionRegistry["Service"]
        const issued = await Effect.runPromise(registry.issue({ threadId: "t", providerInstanceId: "p" }))
        await begin(server)
        const resolved = await Effect.runPromise(Effect.flip(registry.resolve(Redacted.value(issued.token))))
        assert.strictEqual(resolved._tag, "StoreUnavailable")
        const started = Date.now()
        await Effect.runPromise(Scope.close(scope, Exit.void))
        assert.isBelow(Date.now() - started, 4 * storeTimeout)
      }))
  }

  it.live("a Promise registry's close() settles within about storeTimeout once a lookup timed out", () =>
    withServer(async (server) => {
      const registry = await createRegistry({
        store: { redis: { url: server.url }, keyPrefix: freshPrefix(), storeTimeout: `${storeTimeout} millis` }
      })
      const issued = await registry.issue({ threadId: "t", providerInstanceId: "p" })
      await server.kill()
      const looked = await registry.lookup(reveal(issued.token))
      assert.strictEqual((looked as { readonly _tag: string })._tag, "StoreUnavailable")
      const started = Date.now()
      const outcome = await Promise.race([
        registry.close().then(() => "closed"),
        new Promise((resolve) => setTimeout(() => resolve("hung"), 10 * storeTimeout))
      ])
      assert.strictEqual(outcome, "closed")
      assert.isBelow(Date.now() - started, 4 * storeTimeout)
    }))

  it.live("an issue refused while Redis was frozen is not left live after the thaw", () =>
    withServer(async (server) => {
      const scope = Effect.runSync(Scope.make())
      const context = await Effect.runPromise(Layer.buildWithScope(layerOn(server.url), scope))
      const registry = context.mapUnsafe.get(McpSessionRegistry.McpSessionRegistry.key) as McpSessionRegistry.McpSessionRegistry["Service"]
      await Effect.runPromise(registry.issue({ threadId: "kept", providerInstanceId: "p" }))
      server.freeze()
      const refused = await Effect.runPromise(Effect.flip(registry.issue({ threadId: "refused", providerInstanceId: "p" })))
      assert.strictEqual(refused._tag, "StoreUnavailable")
      server.thaw()
      const threads = (await Effect.runPromise(registry.list)).map((credential) => credential.threadId)
      assert.deepStrictEqual(threads, ["kept"])
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }))
})
