import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, Redacted } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { TestClock } from "effect/testing"
import { BearerToken, McpBearerAuth, McpHttpServer, McpSessionRegistry, type RegistryConfig } from "../src/index.ts"
import { pool, type RawRequest } from "./hardening/rawClient.ts"
import * as SyncLookup from "../src/internal/syncLookup.ts"
import { mcpPostHeaders, type RawHeaders, rawRequest } from "./support/http.ts"

const minutes = (n: number) => n * 60_000

// Answers with the credential the guard provided, so a test sees what the handler saw.
const whoami = Effect.gen(function*() {
  const credential = yield* McpBearerAuth.CurrentCredential
  return HttpServerResponse.jsonUnsafe({
    threadId: credential.threadId,
    providerInstanceId: credential.providerInstanceId,
    lastUsedAt: credential.lastUsedAt,
    idleExpiresAt: credential.idleExpiresAt
  })
})

const Routes = Layer.mergeAll(
  HttpRouter.add("*", "/whoami", whoami),
  HttpRouter.add("GET", "/admin", whoami).pipe(
    Layer.provide(McpBearerAuth.layer({ requiredCapability: "admin" }))
  )
)

/** Runs `body` against `Routes` served behind the guard on 127.0.0.1, a free port. */
const withServer = <A, E>(
  options: {
    readonly guard?: McpBearerAuth.Options
    readonly registry?: RegistryConfig.Options
  },
  body: (context: {
    readonly port: number
    readonly registry: McpSessionRegistry.McpSessionRegistry["Service"]
    readonly get: (path: string, headers?: RawHeaders) => ReturnType<typeof rawRequest>
  }) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
    const get = (path: string, headers: RawHeaders = {}) =>
      rawRequest({ port, path, headers: { host: `127.0.0.1:${port}`, ...headers } })
    return yield* body({ port, registry, get })
  }).pipe(
    Effect.provide(
      McpHttpServer.layerGuarded(Routes, options.guard).pipe(
        Layer.provideMerge(McpSessionRegistry.layer(options.registry))
      )
    )
  )

const bearer = (credential: { readonly token: Redacted.Redacted<string> }) => `Bearer ${Redacted.value(credential.token)}`

const issue = (registry: McpSessionRegistry.McpSessionRegistry["Service"], capabilities?: ReadonlyArray<string>) =>
  registry.issue({ threadId: "thread-7", providerInstanceId: "codex", capabilities })

const invalidToken = (description: string) =>
  `Bearer realm="mcp", error="invalid_token", error_description="${description}"`

describe("McpBearerAuth", () => {
  it.effect("lets a live bearer token through and hands the handler its credential", () =>
    withServer({}, ({ get, registry }) =>
      Effect.gen(function*() {
        const credential = yield* issue(registry)
        const response = yield* get("/whoami", { authorization: bearer(credential) })
        assert.strictEqual(response.status, 200)
        const body = JSON.parse(response.body)
        assert.strictEqual(body.threadId, "thread-7")
        assert.strictEqual(body.providerInstanceId, "codex")
        // The scheme is case-insensitive (RFC 7235).
        const lower = yield* get("/whoami", { authorization: `bearer ${Redacted.value(credential.token)}` })
        assert.strictEqual(lower.status, 200)
      })
    ))

  it.effect("reads header names in any case, and refuses two Origins", () =>
    withServer({}, ({ get, port, registry }) =>
      Effect.gen(function*() {
        const credential = yield* issue(registry)
        const shouting = yield* get("/whoami", { AUTHORIZATION: bearer(credential), HOST: `LocalHost:${port}` })
        assert.strictEqual(shouting.status, 200)
        const twice = yield* get("/whoami", { AuThOrIzAtIoN: [bearer(credential), "Bearer x"] })
        assert.strictEqual(twice.status, 400)
        const origins = yield* get("/whoami", {
          authorization: bearer(credential),
          Origin: [`http://localhost:${port}`, "http://evil.example"]
        })
        assert.strictEqual(origins.status, 403)
      })
    ))

  it.effect("slides the expiry on every authenticated request", () =>
    withServer({ registry: { idleTimeout: "30 minutes" } }, ({ get, registry }) =>
      Effect.gen(function*() {
        const credential = yield* issue(registry)
        const authorization = bearer(credential)
        yield* TestClock.adjust(minutes(20))
        const first = JSON.parse((yield* get("/whoami", { authorization })).body)
        assert.strictEqual(first.lastUsedAt, minutes(20))
        assert.strictEqual(first.idleExpiresAt, minutes(50))
        // 40 minutes after issue: alive only because the request above was a use.
        yield* TestClock.adjust(minutes(20))
        const second = yield* get("/whoami", { authorization })
        assert.strictEqual(second.status, 200)
        assert.strictEqual(JSON.parse(second.body).idleExpiresAt, minutes(70))
        yield* TestClock.adjust(minutes(31))
        const idle = yield* get("/whoami", { authorization })
        assert.strictEqual(idle.status, 401)
        assert.strictEqual(
          idle.headers["www-authenticate"],
          invalidToken("the bearer token expired after being idle too long")
        )
      })
    ))

  describe("401", () => {
    it.effect("no credentials: a bare challenge and a JSON-RPC error body", () =>
      withServer({}, ({ get }) =>
        Effect.gen(function*() {
          const response = yield* get("/whoami")
          assert.strictEqual(response.status, 401)
          assert.strictEqual(response.headers["www-authenticate"], `Bearer realm="mcp"`)
          assert.strictEqual(response.headers["content-type"], "application/json")
          assert.strictEqual(response.headers["cache-control"], "no-store")
          assert.deepStrictEqual(JSON.parse(response.body), {
            jsonrpc: "2.0",
            id: null,
            error: {
              code: -32001,
              message: "Unauthorized: no bearer token was presented",
              data: { reason: "no-credentials", error: "invalid_request" }
            }
          })
        })
      ))

    it.effect("names the realm and the resource metadata (RFC 9728) when configured", () =>
      withServer({
        guard: { realm: "host \"A\"", resourceMetadataUrl: "http://127.0.0.1/.well-known/oauth-protected-resource" }
      }, ({ get }) =>
        Effect.gen(function*() {
          const bare = yield* get("/whoami")
          assert.strictEqual(
            bare.headers["www-authenticate"],
            `Bearer realm="host \\"A\\"", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"`
          )
          const wrong = yield* get("/whoami", { authorization: "Bearer nope" })
          assert.strictEqual(
            wrong.headers["www-authenticate"],
            `Bearer realm="host \\"A\\"", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", ` +
              `error="invalid_token", error_description="the bearer token is malformed"`
          )
        })
      ))

    it.effect("a wrong scheme", () =>
      withServer({}, ({ get }) =>
        Effect.gen(function*() {
          for (const authorization of ["Basic dXNlcjpwYXNz", "Bearerx abc", "Token mcpsr_x"]) {
            const response = yield* get("/whoami", { authorization })
            assert.strictEqual(response.status, 401, authorization)
            assert.strictEqual(
              response.headers["www-authenticate"],
              invalidToken("the Authorization scheme must be Bearer")
            )
            assert.strictEqual(JSON.parse(response.body).error.data.reason, "scheme")
          }
        })
      ))

    it.effect("a malformed, an empty and an unknown token, never echoed", () =>
      withServer({}, ({ get }) =>
        Effect.gen(function*() {
          const malformed = yield* get("/whoami", { authorization: "Bearer not-a-token-at-all" })
          assert.strictEqual(malformed.status, 401)
          assert.strictEqual(malformed.headers["www-authenticate"], invalidToken("the bearer token is malformed"))
          assert.notInclude(malformed.body, "not-a-token-at-all")

          const empty = yield* get("/whoami", { authorization: "Bearer" })
          assert.strictEqual(empty.status, 401)
          assert.strictEqual(empty.headers["www-authenticate"], invalidToken("no bearer token was presented"))

          const stranger = BearerToken.mint()
          const unknown = yield* get("/whoami", { authorization: `Bearer ${stranger}` })
          assert.strictEqual(unknown.status, 401)
          assert.strictEqual(
            unknown.headers["www-authenticate"],
            invalidToken("the bearer token is not known to this server")
          )
          assert.notInclude(unknown.body + JSON.stringify(unknown.headers), stranger)
          assert.deepStrictEqual(JSON.parse(unknown.body).error, {
            code: -32001,
            message: "Unauthorized: the bearer token is not known to this server",
            data: { reason: "unknown", error: "invalid_token" }
          })
        })
      ))

    it.effect("a revoked token", () =>
      withServer({}, ({ get, registry }) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          yield* registry.revokeProviderSession(credential.providerSessionId)
          const response = yield* get("/whoami", { authorization: bearer(credential) })
          assert.strictEqual(response.status, 401)
          assert.strictEqual(response.headers["www-authenticate"], invalidToken("the bearer token was revoked"))
          assert.notInclude(response.body, Redacted.value(credential.token))
        })
      ))

    it.effect("an expired token (absolute lifetime)", () =>
      withServer({ registry: { idleTimeout: "1 hour", absoluteLifetime: "2 hours" } }, ({ get, registry }) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          const authorization = bearer(credential)
          for (let i = 0; i < 4; i++) {
            yield* TestClock.adjust(minutes(30))
            assert.strictEqual((yield* get("/whoami", { authorization })).status, 200)
          }
          yield* TestClock.adjust(1)
          const response = yield* get("/whoami", { authorization })
          assert.strictEqual(response.status, 401)
          assert.strictEqual(response.headers["www-authenticate"], invalidToken("the bearer token has expired"))
        })
      ))
  })

  describe("400", () => {
    it.effect("two Authorization headers, even when both are valid", () =>
      withServer({}, ({ get, registry }) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          const response = yield* get("/whoami", { authorization: [bearer(credential), bearer(credential)] })
          assert.strictEqual(response.status, 400)
          assert.strictEqual(
            response.headers["www-authenticate"],
            `Bearer realm="mcp", error="invalid_request", error_description="more than one Authorization header was sent"`
          )
          assert.strictEqual(JSON.parse(response.body).error.code, -32600)
        })
      ))

    it.effect("a token in the query string, even next to a valid header", () =>
      withServer({}, ({ get, registry }) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          const token = Redacted.value(credential.token)
          for (const path of [`/whoami?access_token=${token}`, `/whoami?x=1&access%5Ftoken=${token}`]) {
            for (const headers of [{}, { authorization: bearer(credential) }] as Array<RawHeaders>) {
              const response = yield* get(path, headers)
              assert.strictEqual(response.status, 400, path)
              assert.strictEqual(
                response.headers["www-authenticate"],
                `Bearer realm="mcp", error="invalid_request", ` +
                  `error_description="bearer tokens are not accepted in the query string; send an Authorization header"`
              )
              assert.notInclude(response.body, token)
            }
          }
          // Other query parameters are fine.
          assert.strictEqual((yield* get("/whoami?x=1", { authorization: bearer(credential) })).status, 200)
        })
      ))
  })

  describe("403", () => {
    it.effect("a Host outside the allow-list (DNS rebinding); loopback names at the bound port pass", () =>
      withServer({}, ({ get, port, registry }) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          for (const host of [`evil.example:${port}`, `attacker.test`, `localhost:${port + 1}`, `127.0.0.1`]) {
            const response = yield* get("/whoami", { authorization, host })
            assert.strictEqual(response.status, 403, host)
            assert.isUndefined(response.headers["www-authenticate"])
            assert.deepStrictEqual(JSON.parse(response.body).error.data, { reason: "host", error: "forbidden" })
          }
          for (const host of [`localhost:${port}`, `LOCALHOST:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
            assert.strictEqual((yield* get("/whoami", { authorization, host })).status, 200, host)
          }
        })
      ))

    it.effect("an Origin outside the allow-list; loopback origins and no Origin pass", () =>
      withServer({}, ({ get, port, registry }) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          for (const origin of ["http://evil.example", `http://evil.example:${port}`, "null", `http://localhost:1`]) {
            const response = yield* get("/whoami", { authorization, origin })
            assert.strictEqual(response.status, 403, origin)
            assert.deepStrictEqual(JSON.parse(response.body).error.data, { reason: "origin", error: "forbidden" })
          }
          for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
            assert.strictEqual((yield* get("/whoami", { authorization, origin })).status, 200, origin)
          }
        })
      ))

    it.effect("configured hosts and origins replace the defaults", () =>
      withServer({ guard: { allowedHosts: ["mcp.internal:8443"], allowedOrigins: ["https://app.example"] } }, ({
        get,
        port,
        registry
      }) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          assert.strictEqual((yield* get("/whoami", { authorization, host: `127.0.0.1:${port}` })).status, 403)
          assert.strictEqual((yield* get("/whoami", { authorization, host: "mcp.internal:8443" })).status, 200)
          const origin = yield* get("/whoami", {
            authorization,
            host: "mcp.internal:8443",
            origin: "https://app.example"
          })
          assert.strictEqual(origin.status, 200)
        })
      ))

    it.effect("a credential without the route's required capability", () =>
      withServer({}, ({ get, registry }) =>
        Effect.gen(function*() {
          const plain = yield* issue(registry)
          const response = yield* get("/admin", { authorization: bearer(plain) })
          assert.strictEqual(response.status, 403)
          assert.strictEqual(
            response.headers["www-authenticate"],
            `Bearer realm="mcp", error="insufficient_scope", ` +
              `error_description="the credential lacks a capability this endpoint requires", scope="admin"`
          )
          // The same credential is fine on a route that requires nothing.
          assert.strictEqual((yield* get("/whoami", { authorization: bearer(plain) })).status, 200)
          const admin = yield* registry.issue({
            threadId: "thread-8",
            providerInstanceId: "claude-code",
            capabilities: ["admin"]
          })
          assert.strictEqual((yield* get("/admin", { authorization: bearer(admin) })).status, 200)
        })
      ))
  })

  describe("header edge cases (raw sockets)", () => {
    const send = (port: number, requests: ReadonlyArray<RawRequest>) =>
      Effect.promise(async () => {
        const connections = pool(port, 1)
        try {
          return await connections.run(requests)
        } finally {
          connections.close()
        }
      })

    it.effect("two Host headers get 400 with a JSON-RPC body, whichever comes first", () =>
      withServer({}, ({ port, registry }) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          const good = `127.0.0.1:${port}`
          const responses = yield* send(port, [
            { method: "GET", path: "/whoami", headers: [["Host", good], ["Host", "evil.example"], ["Authorization", authorization]] },
            { method: "GET", path: "/whoami", headers: [["Host", good], ["host", good], ["Authorization", authorization]] },
            { method: "GET", path: "/whoami", headers: [["Host", "evil.example"], ["Host", good], ["Authorization", authorization]] }
          ])
          for (const response of responses) {
            assert.strictEqual(response.status, 400)
            assert.deepStrictEqual(JSON.parse(response.body).error.data, {
              reason: "duplicate-host",
              error: "invalid_request"
            })
            assert.strictEqual(JSON.parse(response.body).error.code, -32600)
          }
          // One Host is fine.
          const [one] = yield* send(port, [
            { method: "GET", path: "/whoami", headers: [["Host", good], ["Authorization", authorization]] }
          ])
          assert.strictEqual(one!.status, 200)
        })
      ))

    it.effect("an absolute-form target is judged by its own host (RFC 9112), not the Host header", () =>
      withServer({}, ({ port, registry }) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          const good = `127.0.0.1:${port}`
          const headers: RawRequest["headers"] = [["Host", good], ["Authorization", authorization]]
          const [evil, evilPort, userinfo, ok] = yield* send(port, [
            { method: "GET", path: "http://evil.example/whoami", headers },
            { method: "GET", path: `http://evil.example:${port}/whoami`, headers },
            { method: "GET", path: `http://127.0.0.1:${port}@evil.example/whoami`, headers },
            { method: "GET", path: `http://${good}/whoami`, headers }
          ])
          for (const response of [evil!, evilPort!, userinfo!]) {
            assert.strictEqual(response.status, 403)
            assert.deepStrictEqual(JSON.parse(response.body).error.data, { reason: "host", error: "forbidden" })
          }
          assert.strictEqual(ok!.status, 200)
        })
      ))

    it.effect("a token anywhere in the target is refused like ?access_token= (400), never echoed", () =>
      withServer({}, ({ port, registry }) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          const token = Redacted.value(credential.token)
          const headers: RawRequest["headers"] = [["Host", `127.0.0.1:${port}`], ["Authorization", bearer(credential)]]
          const stranger = BearerToken.mint()
          // Only targets the router sends to the guarded route: a path of its
          // own (`/whoami/<token>`) is the router's 404 (the rules' unit tests
          // cover paths; McpHttpServer refuses them before routing).
          const paths = [
            `/whoami;access_token=${token}`,
            `/whoami;${token}`,
            `/whoami?token=${token}`,
            `/whoami?x=${stranger}`,
            `/whoami?x=%6D%63psr_${token.slice(6)}`,
            `/whoami?x=%${token}`
          ]
          const responses = yield* send(port, paths.map((path) => ({ method: "GET", path, headers })))
          responses.forEach((response, i) => {
            assert.strictEqual(response.status, 400, paths[i])
            assert.deepStrictEqual(JSON.parse(response.body).error.data, {
              reason: "target-token",
              error: "invalid_request"
            })
            assert.notInclude(response.body + JSON.stringify(response.headers), token.slice(6))
          })
          // Near misses are no tokens: the route answers (or 404s), the guard does not refuse them.
          const [short] = yield* send(port, [{ method: "GET", path: `/whoami?x=${token.slice(0, 40)}`, headers }])
          assert.strictEqual(short!.status, 200)
        })
      ))
  })

  describe("in front of Effect's MCP transport (McpHttpServer)", () => {
    const initialize = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    })
    const serve = <A, E>(
      guard: McpHttpServer.Options,
      body: (port: number, registry: McpSessionRegistry.McpSessionRegistry["Service"]) => Effect.Effect<A, E>
    ) =>
      Effect.gen(function*() {
        const server = yield* McpHttpServer.McpHttpServer
        return yield* body(server.port, yield* McpSessionRegistry.McpSessionRegistry)
      }).pipe(Effect.provide(McpHttpServer.layer(guard).pipe(Layer.provideMerge(McpSessionRegistry.layer()))))

    it.live("an Origin the guard accepts in any case is not refused again by the transport", () =>
      serve({}, (port, registry) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          for (const origin of [`HTTP://LOCALHOST:${port}`, `http://LocalHost:${port}`, `http://127.0.0.1:${port}`]) {
            const response = yield* rawRequest({
              port,
              path: "/mcp",
              method: "POST",
              headers: { ...mcpPostHeaders, host: `localhost:${port}`, origin, authorization },
              body: initialize
            })
            assert.strictEqual(response.status, 200, origin)
          }
          // One the guard refuses is the guard's 403, with its body.
          const evil = yield* rawRequest({
            port,
            path: "/mcp",
            method: "POST",
            headers: { ...mcpPostHeaders, host: `localhost:${port}`, origin: "http://evil.example", authorization },
            body: initialize
          })
          assert.strictEqual(evil.status, 403)
          assert.deepStrictEqual(JSON.parse(evil.body).error.data, { reason: "origin", error: "forbidden" })
        })
      ))

    it.live("a whole session from a browser origin in another case: initialize, then a tool call, with the SDK client", () =>
      serve({}, (port, registry) =>
        Effect.gen(function*() {
          const credential = yield* issue(registry)
          const text = yield* Effect.promise(async () => {
            const client = new Client({ name: "browser-agent", version: "1.0.0" })
            await client.connect(
              new StreamableHTTPClientTransport(new URL(`http://localhost:${port}/mcp`), {
                requestInit: { headers: { authorization: bearer(credential), origin: `HTTP://LOCALHOST:${port}` } }
              })
            )
            try {
              const result = await client.callTool({ name: "session_info", arguments: {} })
              return (result.content as Array<{ readonly text: string }>)[0]!.text
            } finally {
              await client.close()
            }
          })
          assert.include(text, "thread-7")
        })
      ))

    it.live(`allowedOrigins: "*" lets a browser origin through to the transport`, () =>
      serve({ allowedOrigins: "*" }, (port, registry) =>
        Effect.gen(function*() {
          const authorization = bearer(yield* issue(registry))
          const response = yield* rawRequest({
            port,
            path: "/mcp",
            method: "POST",
            headers: { ...mcpPostHeaders, host: `localhost:${port}`, origin: "https://app.example", authorization },
            body: initialize
          })
          assert.strictEqual(response.status, 200)
        })
      ))
  })

  it.effect("refuses odd input with a 4xx, never a 500", () =>
    withServer({}, ({ get }) =>
      Effect.gen(function*() {
        const odd = [
          "Bearer " + "a".repeat(8_000),
          "Bearer  mcpsr_",
          "Bearer \u00e9\u00e9",
          "Bearer a b c",
          "   ",
          ","
        ]
        for (const authorization of odd) {
          const response = yield* get("/whoami", { authorization })
          assert.isAtLeast(response.status, 400)
          assert.isBelow(response.status, 500)
        }
      })
    ))

  it.effect("a registry lookup that dies is logged and answered 401, never 500", () => {
    const logged: Array<string> = []
    const Dying = Layer.effect(
      McpSessionRegistry.McpSessionRegistry,
      Effect.map(McpSessionRegistry.make(), (registry) => ({ ...registry, resolve: () => Effect.die("registry gone") }))
    )
    return Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const token = BearerToken.mint()
      const response = yield* rawRequest({
        port,
        path: "/whoami",
        headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` }
      })
      assert.strictEqual(response.status, 401)
      assert.strictEqual(response.headers["www-authenticate"], invalidToken("the bearer token could not be verified"))
      assert.strictEqual(JSON.parse(response.body).error.data.reason, "unverifiable")
      assert.isTrue(logged.some((line) => line.includes("registry lookup failed")))
      for (const line of logged) assert.notInclude(line, token)
    }).pipe(
      Effect.provide(McpHttpServer.layerGuarded(Routes).pipe(Layer.provide(Dying))),
      Effect.provide(Logger.layer([Logger.make((options) => void logged.push(String(options.message)))]))
    )
  })

  it.effect("finds an accepted request's credential once, and ends its call with the answer", () => {
    // The memory store's plain path, counted: the guard must look the token
    // up and begin its call in one step, not a lookup and then a beginCall.
    const counts = { lookup: 0, beginCall: 0, lookupCall: 0, ended: 0 }
    const Counted = Layer.effect(
      McpSessionRegistry.McpSessionRegistry,
      Effect.map(McpSessionRegistry.make(), (registry) => {
        const sync = SyncLookup.syncLookup(registry)!
        const counted = { ...registry }
        SyncLookup.attach(counted, {
          lookup: (token) => (counts.lookup++, sync.lookup(token)),
          beginCall: (id) => (counts.beginCall++, sync.beginCall(id)),
          lookupCall: (token) => {
            counts.lookupCall++
            const found = sync.lookupCall(token)
            return "_tag" in found ? found : { scope: found.scope, end: () => (counts.ended++, found.end()) }
          },
          isLive: sync.isLive
        })
        return counted
      })
    )
    return Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const credential = yield* issue(registry)
      const response = yield* rawRequest({
        port,
        path: "/whoami",
        headers: { host: `127.0.0.1:${port}`, authorization: bearer(credential) }
      })
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(counts, { lookup: 0, beginCall: 0, lookupCall: 1, ended: 1 })
      // A credential without the route's capability (/admin sits behind a
      // second guard that requires one): every call begun is ended.
      const admin = yield* rawRequest({
        port,
        path: "/admin",
        headers: { host: `127.0.0.1:${port}`, authorization: bearer(credential) }
      })
      assert.strictEqual(admin.status, 403)
      assert.deepStrictEqual(counts, { lookup: 0, beginCall: 0, lookupCall: 3, ended: 3 })
    }).pipe(Effect.provide(McpHttpServer.layerGuarded(Routes).pipe(Layer.provideMerge(Counted))))
  })

  it.effect("a store that cannot answer gets 503 with Retry-After and a JSON-RPC body, never 401", () => {
    const Down = Layer.effect(
      McpSessionRegistry.McpSessionRegistry,
      Effect.map(McpSessionRegistry.make(), (registry) => ({
        ...registry,
        resolve: () => Effect.fail(new McpSessionRegistry.StoreUnavailable({ reason: "unreachable", operation: "resolve" }))
      }))
    )
    return Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const token = BearerToken.mint()
      const response = yield* rawRequest({
        port,
        path: "/whoami",
        headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` }
      })
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers["retry-after"], "1")
      assert.isUndefined(response.headers["www-authenticate"])
      assert.strictEqual(response.headers["cache-control"], "no-store")
      const body = JSON.parse(response.body)
      assert.strictEqual(body.jsonrpc, "2.0")
      assert.isNull(body.id)
      assert.strictEqual(body.error.code, McpBearerAuth.jsonRpcErrorCodes.unavailable)
      assert.deepStrictEqual(body.error.data, { reason: "store-unavailable", error: "temporarily_unavailable" })
      assert.notInclude(response.body, token)
    }).pipe(Effect.provide(McpHttpServer.layerGuarded(Routes).pipe(Layer.provide(Down))))
  })

  it.effect("fails the layer on options that cannot work", () =>
    Effect.gen(function*() {
      for (
        const guard of [
          { realm: "a\r\nSet-Cookie: x=1" },
          { realm: "" },
          { resourceMetadataUrl: "/relative" },
          { allowedHosts: [""] },
          // Node refuses header text above U+00FF: these would turn every refusal into a 500.
          { realm: "hôte\u2014mcp" },
          { resourceMetadataUrl: "https://exämple.test/\u2014" },
          { requiredCapability: "tools\u2014all" }
        ]
      ) {
        const exit = yield* Effect.exit(withServer({ guard }, () => Effect.void))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        assert.strictEqual(error?._tag === "Fail" ? (error.error as { _tag: string })._tag : undefined, "GuardConfigError")
      }
    }))
})
