/**
 * The embedded MCP server under a hostile client that holds a valid
 * credential: a property-based fuzz of generated requests over keep-alive
 * connections to a real server on 127.0.0.1. Each request has one edge flaw:
 * a JSON-RPC member the spec does not define (anywhere in a batch), a body
 * or an initialize past its bound, a token pasted into the target, a `;`
 * parameter on the endpoint, an OAuth probe; plain calls are mixed in. None
 * is dispatched, none is a 5xx or an empty refusal, every refusal is its own
 * precise status with a JSON-RPC body, the sessions stay within their bound,
 * and a plain call still works afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import fc from "fast-check"
import { McpHttpServer, McpSessionRegistry } from "../../src/index.ts"
import * as SessionBinding from "../../src/internal/sessionBinding.ts"
import { mcpPostHeaders, rawRequest } from "../support/http.ts"
import { pool, type RawRequest, type RawResponse } from "./rawClient.ts"

const Count = Tool.make("count", { success: Schema.Number })
const Tools = Toolkit.make(Count)

/** What a flawed request must get. */
type Expect = "ok" | "invalid-member" | "body-too-large" | "initialize-too-large" | "target" | "not-found" | "opened"

const members = fc.oneof(
  fc.constantFrom("headers", "traceId", "spanId", "sampled", "discard", "_tag", "__proto__", "Method", "ID", "session"),
  fc.string({ minLength: 1, maxLength: 12 }).filter((key) =>
    !["jsonrpc", "id", "method", "params", "result", "error"].includes(key)
  )
)

describe("hardening: the MCP edge under fuzz", () => {
  it.live("2,000 generated edge-flawed requests: each refused precisely, none dispatched, sessions bounded", () =>
    Effect.gen(function*() {
      let dispatched = 0
      const bindings: Array<SessionBinding.SessionBinding> = []
      const tools = McpServer.toolkit(Tools).pipe(
        Layer.provide(Tools.toLayer({ count: () => Effect.sync(() => ++dispatched) }))
      )
      const limits = { maxBodySize: 32 * 1024, maxInitializeSize: 4 * 1024, maxSessionsPerCredential: 4 }
      return yield* Effect.gen(function*() {
        const server = yield* McpHttpServer.McpHttpServer
        const registry = yield* McpSessionRegistry.McpSessionRegistry
        const credential = yield* registry.issue({ threadId: "fuzz", providerInstanceId: "codex" })
        const token = Redacted.value(credential.token)
        const host = `127.0.0.1:${server.port}`
        const headers = (sessionId?: string): Array<readonly [string, string]> => [
          ["Host", host],
          ["Authorization", `Bearer ${token}`],
          ["Content-Type", mcpPostHeaders["content-type"]],
          ["Accept", mcpPostHeaders.accept],
          ["MCP-Protocol-Version", "2025-11-25"],
          ...(sessionId === undefined ? [] : [["Mcp-Session-Id", sessionId] as const])
        ]
        // One session for the calls, opened like a client would.
        const init = {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "fuzz", version: "1" } }
        }
        const opened = yield* rawRequest({
          port: server.port,
          path: "/mcp",
          method: "POST",
          headers: Object.fromEntries(headers()),
          body: JSON.stringify(init)
        })
        const sessionId = opened.headers["mcp-session-id"] as string
        assert.isString(sessionId)

        const call = (id: number) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "count", arguments: {} } })
        // `null`: no session, as an initialize is sent.
        const post = (body: unknown, session: string | null = sessionId): RawRequest => ({
          method: "POST",
          path: "/mcp",
          headers: headers(session ?? undefined),
          body: typeof body === "string" ? body : JSON.stringify(body)
        })
        const smuggled = fc.tuple(members, fc.jsonValue(), fc.integer({ min: 1, max: 1e6 })).map(([key, value, id]) => {
          const message: Record<string, unknown> = { ...call(id) }
          Object.defineProperty(message, key, { value, enumerable: true, writable: true, configurable: true })
          return message
        })
        const flawed: fc.Arbitrary<{ readonly expect: Expect; readonly request: RawRequest }> = fc.oneof(
          smuggled.map((message) => ({ expect: "invalid-member" as const, request: post(message) })),
          fc.tuple(smuggled, fc.array(fc.integer({ min: 1, max: 1e6 }).map(call), { maxLength: 4 }), fc.nat()).map((
            [bad, good, at]
          ) => {
            const batch: Array<unknown> = [...good]
            batch.splice(at % (good.length + 1), 0, bad)
            return { expect: "invalid-member" as const, request: post(batch) }
          }),
          fc.integer({ min: limits.maxBodySize + 1, max: 2 ** 40 }).map((length) => ({
            expect: "body-too-large" as const,
            request: { ...post(undefined), headers: [...headers(sessionId), ["Content-Length", String(length)] as const], body: undefined }
          })),
          fc.integer({ min: limits.maxBodySize + 1, max: limits.maxBodySize * 2 }).map((size) => ({
            expect: "body-too-large" as const,
            request: post({ ...call(7), params: { name: "count", arguments: { pad: "x".repeat(size) } } })
          })),
          fc.integer({ min: limits.maxInitializeSize, max: limits.maxBodySize - 1024 }).map((size) => ({
            expect: "initialize-too-large" as const,
            request: post({ ...init, params: { ...init.params, clientInfo: { name: "x".repeat(size), version: "1" } } }, null)
          })),
          fc.constantFrom(
            `/mcp/${token}`,
            `/${token}`,
            `/mcp;access_token=${token}`,
            `/mcp?token=${token}`,
            `/mcp/${encodeURIComponent(token).replace("m", "%6D")}`,
            `/.well-known/oauth-protected-resource/${token}`
          ).map((path) => ({ expect: "target" as const, request: { ...post(call(9)), path } })),
          fc.constantFrom("/mcp;jsessionid=1", "/mcp;", "/mcp;a=b?c=d").map((path) => ({
            expect: "not-found" as const,
            request: { ...post(call(9)), path }
          })),
          fc.constantFrom(
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/register"
          ).map((path) => ({ expect: "not-found" as const, request: { ...post("{}"), path } })),
          fc.integer({ min: 1, max: 1e6 }).map((id) => ({ expect: "ok" as const, request: post(call(id)) })),
          fc.constant({ expect: "opened" as const, request: post(init, null) })
        )

        const problem = (expect: Expect, response: RawResponse): string | undefined => {
          if (response.status >= 500 && !(expect === "opened" && response.status === 503)) return `a ${response.status}`
          if (expect === "ok") return response.status === 200 ? undefined : `a plain call got ${response.status}`
          if (expect === "opened") {
            return response.status === 200 || response.status === 429 ? undefined : `an initialize got ${response.status}`
          }
          if (response.status < 400) return `accepted with ${response.status}`
          let reason: unknown
          try {
            reason = JSON.parse(response.body).error.data.reason
          } catch {
            return `a ${response.status} without a JSON-RPC body: ${response.body.slice(0, 80)}`
          }
          if (expect === "target") return response.status === 400 ? undefined : `a token in the target got ${response.status}`
          const status = { "invalid-member": 400, "body-too-large": 413, "initialize-too-large": 413, "not-found": 404 }[expect]
          return response.status === status && reason === expect ? undefined : `${expect} got ${response.status} ${reason}`
        }

        const client = pool(server.port, 8)
        let sent = 0
        let plain = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(flawed, { minLength: 40, maxLength: 40 }), async (batch) => {
              const before = dispatched
              const responses = await client.run(batch.map((b) => b.request))
              sent += batch.length
              const calls = batch.filter((b) => b.expect === "ok").length
              plain += calls
              batch.forEach(({ expect, request }, i) => {
                const wrong = problem(expect, responses[i]!)
                if (wrong !== undefined) {
                  throw new Error(`${expect}: ${wrong}\n${JSON.stringify({ ...request, body: request.body?.slice(0, 300) })}`)
                }
              })
              // Only the plain calls ran.
              if (dispatched - before !== calls) throw new Error(`${dispatched - before} dispatched of ${calls} plain calls`)
            }),
            { numRuns: 50, seed: Number(process.env.HARDENING_SEED ?? 20261201), endOnFailure: true }
          )
        )
        client.close()
        assert.isAtLeast(sent, 2_000)
        assert.strictEqual(dispatched, plain)
        assert.isAtMost(bindings[0]!.size().sessions, limits.maxSessionsPerCredential)
        // The session still answers a plain call.
        const still = yield* rawRequest({
          port: server.port,
          path: "/mcp",
          method: "POST",
          headers: Object.fromEntries(headers(sessionId)),
          body: JSON.stringify(call(1))
        })
        assert.strictEqual(still.status, 200)
      }).pipe(
        Effect.provide(
          McpHttpServer.layer({ ...limits, registrations: tools }).pipe(
            Layer.provide(Layer.succeed(SessionBinding.Inspect, (binding) => void bindings.push(binding))),
            Layer.provideMerge(McpSessionRegistry.layer())
          )
        )
      )
    }))
})
