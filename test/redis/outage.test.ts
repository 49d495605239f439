/**
 * Redis frozen, then stopped, under a guarded HTTP server: every store call
 * fails typed within `storeTimeout`, the guard answers 503 (never 401, never
 * 500), and once Redis is back every credential that was live still is.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { type Credential, McpBearerAuth, McpHttpServer, McpSessionRegistry } from "../../src/index.ts"
import { rawRequest } from "../support/http.ts"
import { freshPrefix, redisServer } from "../support/stores.ts"

const server = redisServer({ persistent: true })

const whoami = Effect.map(McpBearerAuth.CurrentCredential, (credential) => HttpServerResponse.text(credential.threadId))
const Routes = HttpRouter.add("GET", "/whoami", whoami)

const pause = (millis: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, millis)))

describe("McpSessionRegistry on Redis: outages", () => {
  it.live("frozen or stopped: typed errors and 503s within storeTimeout, nothing lost after a restart", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const http = yield* HttpServer.HttpServer
      const port = http.address._tag === "UnixPathAddress" ? 0 : http.address.port
      const get = (authorization: string) =>
        rawRequest({ port, path: "/whoami", headers: { host: `127.0.0.1:${port}`, authorization } })
      const bearer = (credential: { readonly token: Redacted.Redacted<string> }) =>
        `Bearer ${Redacted.value(credential.token)}`

      const kept: Array<Credential.IssuedCredential> = []
      for (let i = 0; i < 5; i++) kept.push(yield* registry.issue({ threadId: `t${i}`, providerInstanceId: "p" }))
      const spare = yield* registry.issue({ threadId: "spare", providerInstanceId: "p" })
      for (const credential of kept) assert.strictEqual((yield* get(bearer(credential))).status, 200)

      const assertDown = Effect.gen(function*() {
        const started = Date.now()
        const response = yield* get(bearer(kept[0]!))
        assert.strictEqual(response.status, 503)
        assert.strictEqual(response.headers["retry-after"], "1")
        assert.isUndefined(response.headers["www-authenticate"])
        assert.strictEqual(JSON.parse(response.body).error.data.reason, "store-unavailable")
        assert.isBelow(Date.now() - started, 3_000)
        const issued = yield* Effect.flip(registry.issue({ threadId: "down", providerInstanceId: "p" }))
        assert.strictEqual(issued._tag, "StoreUnavailable")
        const listed = yield* Effect.flip(registry.list)
        assert.strictEqual(listed._tag, "StoreUnavailable")
        const touched = yield* Effect.flip(registry.touch("t0"))
        assert.strictEqual(touched._tag, "StoreUnavailable")
        // A revoke that cannot be confirmed is an error, never a silent false.
        const revoked = yield* Effect.flip(registry.revoke(spare.credentialId))
        assert.strictEqual(revoked._tag, "StoreUnavailable")
        return revoked.reason
      })

      const assertBack = Effect.gen(function*() {
        // The client reconnects with backoff: poll until the guard answers again.
        let status = 0
        for (let i = 0; i < 100 && status !== 200; i++) {
          status = (yield* get(bearer(kept[1]!))).status
          assert.include([200, 503], status)
          if (status !== 200) yield* pause(100)
        }
        assert.strictEqual(status, 200)
        for (const credential of kept) assert.strictEqual((yield* get(bearer(credential))).status, 200)
        assert.isAtLeast((yield* registry.list).length, kept.length)
      })

      // Frozen: connections stay open, nothing answers; calls time out.
      server.current().freeze()
      assert.strictEqual(yield* assertDown, "timeout")
      server.current().thaw()
      yield* assertBack

      // Stopped and restarted on its own data.
      yield* Effect.promise(() => server.current().kill())
      const reason = yield* assertDown
      assert.include(["timeout", "unreachable"], reason)
      yield* Effect.promise(() => server.current().start())
      yield* assertBack
    }).pipe(
      Effect.provide(
        McpHttpServer.layerGuarded(Routes).pipe(
          Layer.provideMerge(
            Layer.suspend(() =>
              McpSessionRegistry.layerRedis({ keyPrefix: freshPrefix(), storeTimeout: "300 millis" }).pipe(
                Layer.provide(NodeRedis.layer({ url: server.current().url }))
              )
            )
          )
        )
      )
    ))
})
