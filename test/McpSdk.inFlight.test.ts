/**
 * `McpSdk.callsInFlight` behind the SDK's own `requireBearerAuth`, in a real
 * Express app on 127.0.0.1: a request held open past the idle timeout keeps
 * its credential, and its end is a use; a client that left before the
 * tracking began leaves nothing in flight.
 */
import { assert, describe, it } from "@effect/vitest"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import express from "express"
import * as Http from "node:http"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Fiber, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import * as McpSdk from "../src/McpSdk.ts"
import { McpSessionRegistry } from "../src/index.ts"
import { createRegistry, type Registry } from "../src/promise/index.ts"

const minutes = (n: number) => n * 60_000

/** An app whose one route answers when the test says so. */
const serve = (inFlight: McpSdk.CallsInFlight | undefined) =>
  Effect.gen(function*() {
    const verifier = yield* McpSdk.tokenVerifier()
    let entered: () => void = () => {}
    const inside = new Promise<void>((resolve) => (entered = resolve))
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const server = yield* Effect.acquireRelease(
      Effect.callback<Server>((resume) => {
        const app = express()
        const handlers = [requireBearerAuth({ verifier }), ...(inFlight === undefined ? [] : [inFlight])]
        app.get("/mcp", ...handlers, (_req, res) => {
          entered()
          void released.then(() => res.json({ ok: true }))
        })
        const server = app.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    )
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
    return { url, inside, release }
  })

const heldPastIdle = (track: boolean) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.now())
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    const start = yield* TestClock.testClockWith((clock) => Effect.sync(() => clock.currentTimeMillisUnsafe()))
    const { url, inside, release } = yield* serve(track ? yield* McpSdk.callsInFlight() : undefined)
    const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "codex" })
    const request = yield* Effect.forkChild(Effect.promise(() =>
      fetch(url, { headers: { authorization: Redacted.value(credential.authorizationHeader) } }).then((r) => r.status)
    ))
    yield* Effect.promise(() => inside)
    yield* TestClock.adjust(minutes(15))
    const during = yield* registry.get(credential.credentialId)
    release()
    const status = yield* Fiber.join(request)
    const after = yield* registry.get(credential.credentialId)
    return { start, during, status, after }
  }).pipe(
    Effect.scoped,
    Effect.provide(McpSessionRegistry.layer({ idleTimeout: "10 minutes", maxLifetime: "1 hour", sweepInterval: "1 day" }))
  )

describe("McpSdk.callsInFlight", () => {
  it.effect("keeps a request held past the idle timeout in flight; its end is a use", () =>
    Effect.gen(function*() {
      const { after, during, start, status } = yield* heldPastIdle(true)
      assert.strictEqual(status, 200)
      assert.isTrue(Option.isSome(during))
      assert.strictEqual(Option.getOrThrow(after).lastUsedAt, start + minutes(15))
    }))

  it.effect("without it, the verifier alone lets the same request's credential go idle", () =>
    Effect.gen(function*() {
      const { after, during, status } = yield* heldPastIdle(false)
      assert.strictEqual(status, 200)
      assert.isTrue(Option.isNone(during))
      assert.isTrue(Option.isNone(after))
    }))
})

describe("McpSdk.callsInFlightFromRegistry", () => {
  it("ends the call of a client that went away while requireBearerAuth was verifying (a remote store's round trip)", async () => {
    const registry = await createRegistry()
    const events: Array<string> = []
    let onEnd: () => void = () => {}
    let answer: () => void = () => {}
    let asked: () => void = () => {}
    const verifying = new Promise<void>((resolve) => (asked = resolve))
    // A lookup that answers only once the test says so, as Redis's does after
    // a round trip; the calls it begins are counted.
    const slow: Pick<Registry, "lookup" | "beginCall"> = {
      lookup: (token) =>
        new Promise((resolve) => {
          answer = () => resolve(registry.lookup(token))
          asked()
        }),
      beginCall: (credentialId) => {
        const end = registry.beginCall(credentialId)
        events.push("begin")
        return () => {
          end()
          events.push("end")
          onEnd()
        }
      }
    }
    let closed: () => void = () => {}
    const gone = new Promise<void>((resolve) => (closed = resolve))
    const app = express()
    app.use((_req, res, next) => {
      res.once("close", closed)
      next()
    })
    app.get(
      "/mcp",
      requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRegistry(slow) }),
      McpSdk.callsInFlightFromRegistry(slow),
      (_req, res) => void res.json({ ok: true })
    )
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, "127.0.0.1", () => resolve(listening))
    })
    try {
      const credential = await registry.issue({ threadId: "t", providerInstanceId: "codex" })
      const port = (server.address() as AddressInfo).port
      const request = Http.request({
        host: "127.0.0.1",
        port,
        path: "/mcp",
        agent: false,
        headers: { authorization: Redacted.value(credential.authorizationHeader) }
      })
      request.on("error", () => {})
      request.end()
      // The client hangs up while the token is being verified.
      await verifying
      request.destroy()
      await gone
      const ended = new Promise<void>((resolve) => (onEnd = resolve))
      answer()
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 500))])
      // The call began and ended: nothing is left in flight to keep the credential from going idle.
      assert.deepStrictEqual(events, ["begin", "end"])
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await registry.close()
    }
  })
})
