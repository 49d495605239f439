import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import { inspect } from "node:util"
import { Effect, Layer, Logger, Redacted, References, Schema, Tracer } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import type { Credential } from "../src/index.ts"
import { McpBearerAuth, McpHttpServer, McpSessionRegistry, type Revocation } from "../src/index.ts"
import { mcpPostHeaders, rawRequest } from "./support/http.ts"
import { recordingTracer } from "./support/recording.ts"

// A host's own tool, reading the caller from the guard like any handler would.
const Greet = Tool.make("greet", {
  parameters: Schema.Struct({ name: Schema.String }),
  success: Schema.String,
  dependencies: [McpBearerAuth.CurrentCredential]
})
const HostTools = Toolkit.make(Greet)
const HostToolsLive = McpServer.toolkit(HostTools).pipe(
  Layer.provide(HostTools.toLayer({
    greet: ({ name }) =>
      Effect.map(McpBearerAuth.CurrentCredential, (credential) => `hello ${name}, from ${credential.threadId}`)
  }))
)

/** Runs `body` against the embedded server with a recording registry. */
const withServer = <A, E>(
  body: (context: {
    readonly url: string
    readonly port: number
    readonly registry: McpSessionRegistry.McpSessionRegistry["Service"]
    readonly events: ReadonlyArray<Revocation.RevocationEvent>
  }) => Effect.Effect<A, E>
) => {
  const events: Array<Revocation.RevocationEvent> = []
  return Effect.gen(function*() {
    const server = yield* McpHttpServer.McpHttpServer
    const registry = yield* McpSessionRegistry.McpSessionRegistry
    return yield* body({ url: server.url, port: server.port, registry, events })
  }).pipe(
    Effect.provide(
      McpHttpServer.layer({ registrations: HostToolsLive }).pipe(
        Layer.provideMerge(McpSessionRegistry.layer({
          hooks: [(event) => Effect.sync(() => void events.push(event))]
        }))
      )
    )
  )
}

/** The official SDK client, authenticating with the credential's header. */
const connect = (url: string, credential: Credential.IssuedCredential) =>
  Effect.promise(async () => {
    const client = new Client({ name: "test-agent", version: "1.0.0" })
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: Redacted.value(credential.authorizationHeader) } }
    })
    await client.connect(transport)
    return client
  })

const close = (client: Client) => Effect.promise(() => client.close())

describe("McpHttpServer", () => {
  it.live("listens on 127.0.0.1 at a free port and serves /mcp", () =>
    withServer(({ url, port }) =>
      Effect.sync(() => {
        assert.isAbove(port, 0)
        assert.strictEqual(url, `http://127.0.0.1:${port}/mcp`)
      })
    ))

  it.live("the official SDK client calls a tool through the guard, then gets 401 once the session stops", () =>
    withServer(({ url, registry, events }) =>
      Effect.gen(function*() {
        const credential = yield* registry.issue({ threadId: "thread-42", providerInstanceId: "claude-code" })
        const client = yield* connect(url, credential)
        const tools = yield* Effect.promise(() => client.listTools())
        assert.includeMembers(tools.tools.map((tool) => tool.name), ["session_info", "greet"])

        const info = yield* Effect.promise(() => client.callTool({ name: "session_info", arguments: {} }))
        const scope = info.structuredContent as Record<string, unknown>
        assert.strictEqual(scope.threadId, "thread-42")
        assert.strictEqual(scope.providerInstanceId, "claude-code")
        assert.strictEqual(scope.credentialId, credential.credentialId)
        assert.strictEqual(scope.providerSessionId, credential.providerSessionId)

        const greeting = yield* Effect.promise(() => client.callTool({ name: "greet", arguments: { name: "ada" } }))
        assert.deepStrictEqual(greeting.content, [{ type: "text", text: "hello ada, from thread-42" }])

        assert.strictEqual(yield* registry.revokeProviderSession(credential.providerSessionId), 1)
        assert.deepStrictEqual(events.map((event) => event.reason), ["session-stopped"])

        const refused = yield* Effect.flip(
          Effect.tryPromise(() => client.callTool({ name: "session_info", arguments: {} }))
        )
        const cause = refused.cause
        assert.instanceOf(cause, StreamableHTTPError)
        assert.strictEqual((cause as StreamableHTTPError).code, 401)
        assert.include((cause as StreamableHTTPError).message, "the bearer token was revoked")
        assert.notInclude((cause as StreamableHTTPError).message, Redacted.value(credential.token))
        yield* close(client)
      })
    ))

  it.live("every MCP request is a use that slides the expiry", () =>
    withServer(({ url, registry }) =>
      Effect.gen(function*() {
        const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
        const client = yield* connect(url, credential)
        const call = Effect.promise(() => client.callTool({ name: "session_info", arguments: {} })).pipe(
          Effect.map((result) => result.structuredContent as { lastUsedAt: number; idleExpiresAt: number })
        )
        const first = yield* call
        yield* Effect.sleep("20 millis")
        const second = yield* call
        assert.isAbove(second.lastUsedAt, first.lastUsedAt)
        assert.isAbove(second.idleExpiresAt, first.idleExpiresAt)
        const [listed] = yield* registry.list
        assert.isAtLeast(listed!.lastUsedAt, second.lastUsedAt)
        yield* close(client)
      })
    ))

  it.live("an MCP session belongs to the credential that opened it", () =>
    withServer(({ port, registry }) =>
      Effect.gen(function*() {
        const first = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const second = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const send = (
          credential: Credential.IssuedCredential,
          body: unknown,
          sessionId?: string,
          method = "POST"
        ) =>
          rawRequest({
            port,
            path: "/mcp",
            method,
            headers: {
              ...mcpPostHeaders,
              host: `127.0.0.1:${port}`,
              authorization: Redacted.value(credential.authorizationHeader),
              "mcp-protocol-version": "2025-11-25",
              ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId })
            },
            ...(body === undefined ? {} : { body: JSON.stringify(body) })
          })
        const open = Effect.fnUntraced(function*(credential: Credential.IssuedCredential) {
          const init = yield* send(credential, {
            jsonrpc: "2.0",
            id: 1,
            method: "initialize",
            params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
          })
          assert.strictEqual(init.status, 200)
          const sessionId = init.headers["mcp-session-id"] as string
          assert.isString(sessionId)
          yield* send(credential, { jsonrpc: "2.0", method: "notifications/initialized" }, sessionId)
          return sessionId
        })
        const sessionInfo = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "session_info", arguments: {} } }

        const sessionA = yield* open(first)
        const own = yield* send(first, sessionInfo, sessionA)
        assert.strictEqual(own.status, 200)
        assert.include(own.body, "\"threadId\":\"thread-a\"")

        // Another live credential cannot use, nor end, a session it did not open.
        const foreign = yield* send(second, sessionInfo, sessionA)
        assert.strictEqual(foreign.status, 404)
        assert.notInclude(foreign.body, "thread-a")
        assert.strictEqual((yield* send(second, undefined, sessionA, "DELETE")).status, 404)
        assert.strictEqual((yield* send(first, sessionInfo, sessionA)).status, 200)

        // Its own session works, and each tool call sees its own caller.
        const sessionB = yield* open(second)
        const other = yield* send(second, sessionInfo, sessionB)
        assert.strictEqual(other.status, 200)
        assert.include(other.body, "\"threadId\":\"thread-b\"")

        // The owner may end its session.
        assert.strictEqual((yield* send(first, undefined, sessionA, "DELETE")).status, 204)
        assert.strictEqual((yield* send(first, sessionInfo, sessionA)).status, 404)

        // A session whose credential was revoked is taken over by no one.
        yield* registry.revoke(second.credentialId)
        const third = yield* registry.issue({ threadId: "thread-c", providerInstanceId: "codex" })
        const orphaned = yield* send(third, sessionInfo, sessionB)
        assert.strictEqual(orphaned.status, 404)
        assert.notInclude(orphaned.body, "thread-b")
        assert.strictEqual((yield* send(third, undefined, sessionB, "DELETE")).status, 404)
      })
    ))

  it.live("refuses an unauthenticated initialize and a rebinding Host before MCP sees them", () =>
    withServer(({ port, registry }) =>
      Effect.gen(function*() {
        const initialize = JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
        })
        const anonymous = yield* rawRequest({
          port,
          path: "/mcp",
          method: "POST",
          headers: { ...mcpPostHeaders, host: `127.0.0.1:${port}` },
          body: initialize
        })
        assert.strictEqual(anonymous.status, 401)
        assert.strictEqual(anonymous.headers["www-authenticate"], `Bearer realm="mcp"`)
        assert.strictEqual(JSON.parse(anonymous.body).error.code, -32001)

        const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
        const rebound = yield* rawRequest({
          port,
          path: "/mcp",
          method: "POST",
          headers: {
            ...mcpPostHeaders,
            host: `evil.example:${port}`,
            origin: `http://evil.example:${port}`,
            authorization: Redacted.value(credential.authorizationHeader)
          },
          body: initialize
        })
        assert.strictEqual(rebound.status, 403)

        // A page served from the loopback origin itself is allowed through both checks.
        const sameOrigin = yield* rawRequest({
          port,
          path: "/mcp",
          method: "POST",
          headers: {
            ...mcpPostHeaders,
            host: `localhost:${port}`,
            origin: `http://localhost:${port}`,
            authorization: Redacted.value(credential.authorizationHeader)
          },
          body: initialize
        })
        assert.strictEqual(sameOrigin.status, 200)
      })
    ))

  it.live("no log line or span carries a token, even one sent in the query string", () => {
    const lines: Array<string> = []
    const { spans, tracer } = recordingTracer()
    const capture = Logger.make((options) => {
      lines.push(inspect({
        message: options.message,
        cause: options.cause,
        annotations: options.fiber.getRef(References.CurrentLogAnnotations)
      }, { depth: 10 }))
    })
    const tokens: Array<string> = []
    return Effect.gen(function*() {
      const server = yield* McpHttpServer.McpHttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
      const token = Redacted.value(credential.token)
      tokens.push(token)
      const client = yield* connect(server.url, credential)
      yield* Effect.promise(() => client.callTool({ name: "session_info", arguments: {} }))
      const post = (path: string, authorization?: string) =>
        rawRequest({
          port: server.port,
          path,
          method: "POST",
          headers: {
            ...mcpPostHeaders,
            host: `127.0.0.1:${server.port}`,
            ...(authorization === undefined ? {} : { authorization })
          },
          body: "{}"
        })
      assert.strictEqual((yield* post(`/mcp?access_token=${token}`)).status, 400)
      const altered = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A")
      assert.strictEqual((yield* post("/mcp", `Bearer ${altered}`)).status, 401)
      yield* registry.revokeProviderSession(credential.providerSessionId)
      assert.strictEqual((yield* post("/mcp", `Bearer ${token}`)).status, 401)
      yield* Effect.promise(() => client.close())
    }).pipe(
      Effect.provide(
        McpHttpServer.layer({ logRequests: true }).pipe(Layer.provideMerge(McpSessionRegistry.layer()))
      ),
      Effect.provide(Layer.mergeAll(
        Logger.layer([capture]),
        Layer.succeed(References.MinimumLogLevel, "All"),
        Layer.succeed(Tracer.Tracer, tracer)
      )),
      Effect.andThen(Effect.sync(() => {
        const spanText = spans.map((span) =>
          inspect({ name: span.name, attributes: span.attributes, events: span.events, status: span.status }, {
            depth: 10
          })
        )
        assert.isTrue(lines.some((line) => line.includes("Sent HTTP response")), "request logging was on")
        assert.isTrue(spanText.some((text) => text.includes("access_token")), "the query-string request was traced")
        assert.isAbove(tokens.length, 0)
        for (const token of tokens) {
          const secret = token.slice("mcpsr_".length, 40)
          for (const text of [...lines, ...spanText]) assert.notInclude(text, secret)
        }
      }))
    )
  })
})
