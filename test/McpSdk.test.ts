import { assert, describe, it } from "@effect/vitest"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js"
import { InvalidTokenError } from "@modelcontextprotocol/sdk/server/auth/errors.js"
import express from "express"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Layer, Logger, ManagedRuntime, Redacted } from "effect"
import type { Scope } from "effect"
import { TestClock } from "effect/testing"
import * as McpSdk from "../src/McpSdk.ts"
import { McpSessionRegistry } from "../src/index.ts"

// An Express app guarded by the SDK's own middleware, on loopback port 0.
const serve = (verifier: OAuthTokenVerifier, requiredScopes?: Array<string>) =>
  Effect.acquireRelease(
    Effect.callback<Server>((resume) => {
      const app = express()
      app.get("/mcp", requireBearerAuth({ verifier, ...(requiredScopes ? { requiredScopes } : {}) }), (req, res) => {
        const presented = req.headers.authorization?.slice("Bearer ".length)
        res.json({ auth: req.auth, tokenMatches: req.auth?.token === presented })
      })
      const server = app.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`))

interface Reply {
  readonly status: number
  readonly wwwAuthenticate: string | null
  readonly body: any
}

const call = (url: string, token?: string) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, wwwAuthenticate: response.headers.get("www-authenticate"), body: await response.json() }
  })

const assertRefused = (reply: Reply, description: string, token?: string) => {
  assert.strictEqual(reply.status, 401)
  assert.include(reply.wwwAuthenticate, `error="invalid_token"`)
  assert.include(reply.wwwAuthenticate, `error_description="${description}"`)
  assert.strictEqual(reply.body.error, "invalid_token")
  if (token !== undefined) {
    assert.notInclude(reply.wwwAuthenticate, token)
    assert.notInclude(JSON.stringify(reply.body), token)
  }
}

const registry = McpSessionRegistry.McpSessionRegistry

// A registry on the test's TestClock, set to the wall clock first: the SDK
// compares AuthInfo.expiresAt with Date.now().
const withRegistry = <A, E>(
  body: Effect.Effect<A, E, McpSessionRegistry.McpSessionRegistry | Scope.Scope>
) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.now())
    return yield* body.pipe(
      Effect.scoped,
      Effect.provide(
        McpSessionRegistry.layer({ idleTimeout: "10 minutes", maxLifetime: "1 hour", absoluteLifetime: "30 minutes" })
      )
    )
  })

describe("McpSdk", () => {
  it.effect("a live token passes requireBearerAuth and becomes AuthInfo", () =>
    withRegistry(Effect.gen(function*() {
      const url = yield* serve(yield* McpSdk.tokenVerifier())
      const credential = yield* (yield* registry).issue({
        threadId: "thread-1",
        providerInstanceId: "codex",
        capabilities: ["tools:call"]
      })
      const reply = yield* call(url, Redacted.value(credential.token))
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual(reply.body.auth, {
        clientId: "codex",
        scopes: ["tools:call"],
        expiresAt: Math.floor(credential.expiresAt / 1000),
        extra: {
          credentialId: credential.credentialId,
          threadId: "thread-1",
          providerSessionId: credential.providerSessionId,
          providerInstanceId: "codex",
          idleExpiresAt: credential.issuedAt + 10 * 60_000
        }
      })
      // The handler can read the token, but serializing AuthInfo does not print it.
      assert.isTrue(reply.body.tokenMatches)
      assert.notInclude(JSON.stringify(reply.body), Redacted.value(credential.token))
    })))

  it.effect("an idle token gets 401 invalid_token, not 500", () =>
    withRegistry(Effect.gen(function*() {
      const url = yield* serve(yield* McpSdk.tokenVerifier())
      const credential = yield* (yield* registry).issue({ threadId: "t", providerInstanceId: "p" })
      const token = Redacted.value(credential.token)
      yield* TestClock.adjust("9 minutes")
      assert.strictEqual((yield* call(url, token)).status, 200)
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* call(url, token)).status, 200)
      yield* TestClock.adjust("10 minutes")
      yield* TestClock.adjust(1)
      assertRefused(yield* call(url, token), "the bearer token expired after being idle too long", token)
    })))

  it.effect("an expired token gets 401 invalid_token, not 500", () =>
    withRegistry(Effect.gen(function*() {
      const url = yield* serve(yield* McpSdk.tokenVerifier())
      const credential = yield* (yield* registry).issue({ threadId: "t", providerInstanceId: "p" })
      const token = Redacted.value(credential.token)
      // Kept busy, it outlives the idle timeout, until the absolute cap.
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("9 minutes")
        assert.strictEqual((yield* call(url, token)).status, 200)
      }
      yield* TestClock.adjust("4 minutes")
      assertRefused(yield* call(url, token), "the bearer token has expired", token)
    })))

  it.effect("a revoked, unknown or malformed token gets 401 invalid_token, not 500", () =>
    withRegistry(Effect.gen(function*() {
      const url = yield* serve(yield* McpSdk.tokenVerifier())
      const service = yield* registry
      const credential = yield* service.issue({ threadId: "t", providerInstanceId: "p" })
      const token = Redacted.value(credential.token)
      assert.strictEqual((yield* call(url, token)).status, 200)
      yield* service.revokeProviderSession(credential.providerSessionId)
      assertRefused(yield* call(url, token), "the bearer token was revoked", token)
      assertRefused(yield* call(url, "mcpsr_" + "A".repeat(49)), "the bearer token is malformed")
      assertRefused(yield* call(url, "x".repeat(8_000)), "the bearer token is malformed")
      const missing = yield* call(url)
      assert.strictEqual(missing.status, 401)
      assert.include(missing.wwwAuthenticate, `error="invalid_token"`)
    })))

  it.effect("capabilities are scopes: requiredScopes the credential lacks give 403 insufficient_scope", () =>
    withRegistry(Effect.gen(function*() {
      const url = yield* serve(yield* McpSdk.tokenVerifier(), ["admin"])
      const credential = yield* (yield* registry).issue({ threadId: "t", providerInstanceId: "p", capabilities: ["read"] })
      const reply = yield* call(url, Redacted.value(credential.token))
      assert.strictEqual(reply.status, 403)
      assert.include(reply.wwwAuthenticate, `error="insufficient_scope"`)
    })))

  it.effect("reports the configured resource, so expectedResource checks pass", () =>
    withRegistry(Effect.gen(function*() {
      const resource = new URL("http://127.0.0.1/mcp")
      const verifier = yield* McpSdk.tokenVerifier({ resource })
      const credential = yield* (yield* registry).issue({ threadId: "t", providerInstanceId: "p" })
      const info = yield* Effect.promise(() => verifier.verifyAccessToken(Redacted.value(credential.token)))
      assert.strictEqual(info.resource, resource)
    })))

  it.live("runs from plain Promise code on a ManagedRuntime", () =>
    Effect.promise(async () => {
      const runtime = ManagedRuntime.make(McpSessionRegistry.layer())
      const verifier = McpSdk.tokenVerifierFromRuntime(runtime)
      const credential = await runtime.runPromise(
        registry.use((r) => r.issue({ threadId: "t", providerInstanceId: "p" }))
      )
      const token = Redacted.value(credential.token)
      const info = await verifier.verifyAccessToken(token)
      assert.strictEqual(McpSdk.caller(info)?.credentialId, credential.credentialId)
      assert.isUndefined(McpSdk.caller(undefined))
      assert.isUndefined(McpSdk.caller({ token: "", clientId: "other", scopes: [] }))
      await runtime.runPromise(registry.use((r) => r.revoke(credential.credentialId)))
      const refused = await verifier.verifyAccessToken(token).then(() => undefined, (error: unknown) => error)
      assert.instanceOf(refused, InvalidTokenError)
      assert.strictEqual((refused as InvalidTokenError).message, "the bearer token was revoked")
      await runtime.dispose()
    }))

  it.live("a runtime that cannot run (failed layer, or disposed) refuses with 401, never 500", () =>
    Effect.gen(function*() {
      const broken = ManagedRuntime.make(Layer.effect(registry, Effect.fail("no registry")))
      const disposed = ManagedRuntime.make(McpSessionRegistry.layer())
      yield* Effect.promise(() => disposed.dispose())
      const runtimes: ReadonlyArray<ManagedRuntime.ManagedRuntime<McpSessionRegistry.McpSessionRegistry, unknown>> = [
        broken,
        disposed
      ]
      for (const runtime of runtimes) {
        const url = yield* serve(McpSdk.tokenVerifierFromRuntime(runtime))
        assertRefused(yield* call(url, "mcpsr_" + "A".repeat(49)), McpSdk.unverifiableDescription)
      }
    }).pipe(Effect.scoped))

  it.effect("a registry that dies while resolving is refused with 401 and logged, never 500", () =>
    Effect.gen(function*() {
      const logged: Array<unknown> = []
      const dying = Context.make(registry, { resolve: () => Effect.die(new Error("boom")) } as any).pipe(
        Context.add(Logger.CurrentLoggers, new Set([Logger.make(({ message }) => void logged.push(message))]))
      )
      const url = yield* serve(McpSdk.fromContext(dying))
      assertRefused(yield* call(url, "mcpsr_" + "A".repeat(49)), McpSdk.unverifiableDescription)
      assert.include(JSON.stringify(logged), "Bearer token verification failed")
      assert.include(JSON.stringify(logged), "boom")
    }).pipe(Effect.scoped))

  it.effect("a store that cannot answer is temporarily_unavailable (400), never 401 or 500", () =>
    Effect.gen(function*() {
      const down = Context.make(registry, {
        resolve: () => Effect.fail(new McpSessionRegistry.StoreUnavailable({ reason: "timeout", operation: "resolve" }))
      } as any)
      const url = yield* serve(McpSdk.fromContext(down))
      const reply = yield* call(url, "mcpsr_" + "A".repeat(49))
      assert.strictEqual(reply.status, 400)
      assert.isNull(reply.wwwAuthenticate)
      assert.strictEqual(reply.body.error, "temporarily_unavailable")
      assert.strictEqual(reply.body.error_description, McpSdk.storeUnavailableDescription)
    }).pipe(Effect.scoped))
})
