/**
 * Secrets: a full session (issue, replace, resolve, touch, idle expiry, the
 * sweeper, every revoke, failing, dying and timing-out hooks, scoped issues,
 * shutdown) with every log line, span, span event and exit, metric, error and
 * public value captured and rendered every way a host might render it
 * (`String`, `JSON.stringify`, `util.inspect`, `Cause.pretty`). No rendering
 * holds a raw token, whole or in part.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Logger, Metric, Redacted, References, Scope, Tracer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { TestClock } from "effect/testing"
import { createServer } from "node:http"
import { inspect } from "node:util"
import { BearerToken, McpBearerAuth, McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { pool } from "./rawClient.ts"
import { recordingTracer } from "../support/recording.ts"

/** Fails if any 16 characters of a token's random body, which would identify it, appear in a text. */
const assertNoTokenPiece = (tokens: Iterable<string>, texts: ReadonlyArray<string>): void => {
  for (const token of tokens) {
    const body = token.slice(BearerToken.prefix.length)
    for (let at = 0; at + 16 <= body.length; at += 8) {
      const piece = body.slice(at, at + 16)
      const found = texts.find((text) => text.includes(piece))
      assert.isUndefined(found, `a piece of a token appears in: ${found?.slice(0, 300)}`)
    }
  }
}

/** Every way a host might turn a value into text. */
const renderings = (value: unknown): Array<string> => {
  const out = [inspect(value, { depth: 12, showHidden: true, getters: true })]
  try {
    out.push(String(value))
  } catch {
    // Objects without a prototype cannot be stringified; inspect covers them.
  }
  try {
    out.push(JSON.stringify(value) ?? "")
  } catch (error) {
    out.push(String(error))
  }
  if (Cause.isCause(value)) out.push(Cause.pretty(value))
  if (value instanceof Error) out.push(value.message, value.stack ?? "")
  return out
}

describe("hardening: secrets", () => {
  it.effect("no log, span, metric, error or public value renders a raw token", () => {
    const texts: Array<string> = []
    const values: Array<unknown> = []
    const { spans, tracer } = recordingTracer()
    const capture = Logger.make((options) => {
      texts.push(Logger.formatJson.log(options) as string)
      texts.push(...renderings(options.message), ...renderings(options.cause))
    })
    const tokens: Array<string> = []
    const events: Array<Revocation.RevocationEvent> = []
    const hooks: ReadonlyArray<Revocation.RevocationHook> = [
      (event) => Effect.sync(() => void events.push(event)),
      (event) => Effect.fail(event),
      (event) => Effect.die(event),
      () => Effect.never
    ]

    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        McpSessionRegistry.layer({ hooks, hookTimeout: "1 second", idleTimeout: "10 minutes", sweepInterval: "1 minute" }),
        scope
      )
      const registry = Context.get(context, McpSessionRegistry.McpSessionRegistry)
      values.push(registry, context)
      const keep = <A>(value: A): A => {
        values.push(value)
        return value
      }
      // Calls that wait for hooks wait for the hanging one's timeout: let virtual time pass.
      const settle = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(effect)
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(fiber)
        })
      const remember = (credential: { readonly token: Redacted.Redacted<string> }) => {
        tokens.push(Redacted.value(credential.token))
        keep(credential)
        keep(credential.token)
      }

      const a = yield* registry.issue({ threadId: "t", providerInstanceId: "claude", capabilities: ["tools"] })
      const b = yield* registry.issue({ threadId: "t", providerInstanceId: "codex" })
      const c = yield* registry.issue({ threadId: "u", providerInstanceId: "gemini" })
      for (const credential of [a, b, c]) remember(credential)
      keep(yield* registry.resolve(tokens[0]!))
      keep(yield* registry.touch("t"))
      // Wrong tokens built from real ones: every refusal and its error.
      for (const wrong of [tokens[0]! + "x", tokens[0]!.slice(0, -1) + "A", `Bearer ${tokens[0]}`, tokens[0]!.toUpperCase()]) {
        keep(yield* Effect.exit(registry.resolve(wrong)))
      }
      const replaced = yield* settle(registry.issue({ threadId: "t", providerInstanceId: "claude" }))
      remember(replaced)
      keep(yield* Effect.exit(registry.resolve(tokens[0]!)))
      keep(yield* settle(registry.revoke(b.credentialId)))
      keep(yield* Effect.exit(registry.resolve(tokens[1]!)))
      keep(yield* Effect.exit(registry.issue({ threadId: tokens[2]!.slice(0, 0), providerInstanceId: "p" })))
      yield* settle(Effect.scoped(Effect.gen(function*() {
        remember(yield* registry.issueScoped({ threadId: "scoped", providerInstanceId: "p" }))
        yield* registry.onRevoke((event) => Effect.sync(() => void keep(event)))
      })))
      keep(yield* registry.list)
      // Idle expiry, found by the sweeper and by a lookup.
      yield* TestClock.adjust("11 minutes")
      keep(yield* Effect.exit(registry.resolve(tokens[2]!)))
      const d = yield* registry.issue({ threadId: "v", providerInstanceId: "p" })
      remember(d)
      keep(yield* settle(registry.revokeProviderSession(d.providerSessionId)))
      const e = yield* registry.issue({ threadId: "w", providerInstanceId: "p" })
      remember(e)
      keep(yield* settle(registry.revokeThread("w")))
      remember(yield* registry.issue({ threadId: "x", providerInstanceId: "p" }))
      keep(yield* settle(registry.revokeAll))
      remember(yield* registry.issue({ threadId: "y", providerInstanceId: "p" }))
      keep(yield* Metric.snapshot)
      keep(yield* Metric.dump)
      yield* TestClock.adjust("2 seconds")
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("2 seconds")
      keep(yield* Fiber.await(closing))
      values.push(...events)
    }).pipe(
      Effect.provide(Layer.mergeAll(
        Logger.layer([capture]),
        Layer.succeed(References.MinimumLogLevel, "All"),
        Layer.succeed(Tracer.Tracer, tracer)
      )),
      Effect.andThen(Effect.sync(() => {
        for (const span of spans) {
          texts.push(...renderings({
            name: span.name,
            attributes: [...span.attributes],
            events: span.events,
            status: span.status,
            annotations: span.annotations
          }))
        }
        for (const value of values) texts.push(...renderings(value))

        // The session did what it claims: it made the logs, spans and events checked here.
        assert.strictEqual(tokens.length, 9)
        assert.isTrue(spans.some((span) => span.name === "McpSessionRegistry.sweep"))
        assert.isTrue(spans.some((span) => span.name === "McpSessionRegistry.revokeThread"))
        const reasons = new Set(events.map((event) => event.reason))
        for (const reason of ["replaced", "revoked", "session-stopped", "idle", "shutdown"]) {
          assert.isTrue(reasons.has(reason as Revocation.RevocationReason), reason)
        }
        const all = texts.join("\n")
        assert.include(all, "Revocation hook abandoned")
        assert.include(all, "Revocation hook failed")
        assert.include(all, "mcp_session_registry_resolutions_total")
        assert.include(all, "<redacted:McpSessionToken>")
        assert.include(all, "<redacted:McpSessionAuthorization>")

        assertNoTokenPiece(tokens, texts)
        // Nothing that looks like a token at all.
        for (const text of texts) assert.notMatch(text, BearerToken.pattern)
      }))
    )
  })
})

describe("hardening: secrets over HTTP", () => {
  // Served with HttpRouter.serve and the request logger on. Effect's server
  // records the full URL on its span before any middleware runs, so a token
  // pasted into `?access_token=` reaches `url.full` and `url.query` unless
  // `access_token` is among `UrlParams.CurrentRedactedNames`, which
  // McpBearerAuth.layerRedactQueryToken sets, as the README tells hosts to.
  it.live("the guard behind HttpRouter.serve, logger on: no request log or span carries a token", () => {
    const texts: Array<string> = []
    const { spans, tracer } = recordingTracer()
    const capture = Logger.make((options) => {
      texts.push(Logger.formatJson.log(options) as string, ...renderings(options.message), ...renderings(options.cause))
    })
    const Ping = HttpRouter.add("*", "/mcp", HttpServerResponse.text("pong")).pipe(
      Layer.provide(McpBearerAuth.layer())
    )
    const Served = HttpRouter.serve(Ping).pipe(
      Layer.provide(McpBearerAuth.layerRedactQueryToken),
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(McpSessionRegistry.layer()),
      Layer.provide(Layer.mergeAll(
        Logger.layer([capture]),
        Layer.succeed(References.MinimumLogLevel, "All"),
        Layer.succeed(Tracer.Tracer, tracer)
      ))
    )
    const tokens: Array<string> = []
    return Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
      const token = Redacted.value(credential.token)
      tokens.push(token)
      const host = `127.0.0.1:${port}`
      const client = pool(port, 1)
      const responses = yield* Effect.promise(() =>
        client.run([
          { method: "POST", path: "/mcp", headers: [["Host", host], ["Authorization", `Bearer ${token}`]] },
          { method: "POST", path: `/mcp?access_token=${token}`, headers: [["Host", host]] },
          { method: "POST", path: `/mcp?x=1&access_token=${token}`, headers: [["Host", host], ["Authorization", `Bearer ${token}`]] },
          { method: "POST", path: "/mcp", headers: [["Host", host], ["Authorization", `Bearer ${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`]] },
          { method: "POST", path: "/mcp", headers: [["Host", "evil.example"], ["Authorization", `Bearer ${token}`]] }
        ])
      )
      client.close()
      assert.deepStrictEqual(responses.map((r) => r.status), [200, 400, 400, 401, 403])
    }).pipe(
      Effect.provide(Served),
      Effect.andThen(Effect.sync(() => {
        assert.isTrue(texts.some((text) => text.includes("/mcp")), "the request logger logged no request")
        for (const span of spans) {
          texts.push(...renderings({ name: span.name, attributes: [...span.attributes], events: span.events, status: span.status }))
        }
        assert.isTrue(spans.some((span) => span.attributes.get("url.query") !== undefined), "no span recorded a query")
        assertNoTokenPiece(tokens, texts)
      }))
    )
  })
})
