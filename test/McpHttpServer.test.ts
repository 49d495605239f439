import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import * as Http from "node:http"
import { inspect } from "node:util"
import { Deferred, Effect, Fiber, Layer, Logger, Option, Redacted, References, Schema, Tracer } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import { HttpEffect, HttpRouter, HttpServerResponse } from "effect/http"
import { TestClock } from "effect/testing"
import type { Credential, RegistryConfig } from "../src/index.ts"
import { McpBearerAuth, McpHttpServer, McpSessionRegistry, type Revocation } from "../src/index.ts"
import * as SessionBinding from "../src/internal/sessionBinding.ts"
import { mcpPostHeaders, rawRequest } from "./support/http.ts"
import { recordingLogger, recordingTracer } from "./support/recording.ts"

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

/** Raw MCP requests over `node:http`, one credential at a time. */
const rawMcp = (port: number) => {
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
  const call = (name: string, args: Record<string, unknown> = {}) => ({
    jsonrpc: "2.0",
    id: 2,
    method: "tools/call",
    params: { name, arguments: args }
  })
  // The greet tool answers on a session still bound to `credential`, of thread-b in these tests.
  const greets = Effect.fnUntraced(function*(credential: Credential.IssuedCredential, sessionId: string, name: string) {
    const response = yield* send(credential, call("greet", { name }), sessionId)
    assert.strictEqual(response.status, 200)
    assert.include(response.body, `hello ${name}, from thread-b`)
  })
  return { send, open, call, greets }
}

/**
 * One MCP POST over `node:http`, watched as it goes: `head` once its
 * response's status and headers are in, `body` once all of it arrived (or the
 * connection closed), and `drop` closes the connection as a client that gives
 * up would.
 */
const watchedPost = (port: number, credential: Credential.IssuedCredential, body: unknown, sessionId?: string) =>
  Effect.sync(() => {
    let head!: (value: { readonly status: number; readonly headers: Http.IncomingHttpHeaders }) => void
    let done!: (body: string) => void
    const heads = new Promise<{ readonly status: number; readonly headers: Http.IncomingHttpHeaders }>((resolve) =>
      head = resolve
    )
    const bodies = new Promise<string>((resolve) => done = resolve)
    const request = Http.request({
      host: "127.0.0.1",
      port,
      path: "/mcp",
      method: "POST",
      agent: false,
      headers: {
        ...mcpPostHeaders,
        host: `127.0.0.1:${port}`,
        authorization: Redacted.value(credential.authorizationHeader),
        "mcp-protocol-version": "2025-11-25",
        ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId })
      }
    }, (response) => {
      head({ status: response.statusCode ?? 0, headers: response.headers })
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("close", () => done(Buffer.concat(chunks).toString("utf8")))
    })
    request.on("error", () => done(""))
    request.end(JSON.stringify(body))
    return {
      head: Effect.promise(() => heads),
      body: Effect.promise(() => bodies),
      drop: Effect.sync(() => void request.destroy())
    }
  })

const sessionNotFound = (response: { readonly status: number; readonly body: string }) => {
  assert.strictEqual(response.status, 404)
  const error = JSON.parse(response.body).error
  assert.strictEqual(error.message, "Session not found")
  assert.deepStrictEqual(error.data, { reason: "session-not-found", error: "not_found" })
}

// A tool that runs until its request is interrupted, to see a session end in the transport.
const Hold = Tool.make("hold", { success: Schema.String })
// A tool that revokes its caller's own thread, then answers.
const StopSelf = Tool.make("stop_self", {
  success: Schema.String,
  dependencies: [McpBearerAuth.CurrentCredential]
})
// A tool whose answer streams: it sends a progress notification, so the
// transport answers over SSE at once, then signals `streaming` and answers
// only once `proceed` is done (or, interrupted, signals `released`).
const StreamSlowly = Tool.make("stream_slowly", { success: Schema.String })
const HoldTools = Toolkit.make(Hold, StopSelf, StreamSlowly)

/**
 * `withServer` with the server's session binding at hand, a `hold` tool whose
 * call signals `held` and, once interrupted, `released`, and registry options.
 */
const withBinding = <A, E>(
  registryOptions: RegistryConfig.Options,
  body: (context: {
    readonly port: number
    readonly registry: McpSessionRegistry.McpSessionRegistry["Service"]
    readonly binding: SessionBinding.SessionBinding
    readonly events: ReadonlyArray<Revocation.RevocationEvent>
    readonly held: Deferred.Deferred<void>
    readonly released: Deferred.Deferred<void>
    /** `stream_slowly` sent its progress notification. */
    readonly streaming: Deferred.Deferred<void>
    /** Lets `stream_slowly` answer. */
    readonly proceed: Deferred.Deferred<void>
    /** What `stop_self` saw after its revocation returned. */
    readonly stopped: Array<{ readonly revoked: number; readonly live: boolean }>
  }) => Effect.Effect<A, E>,
  extra: Layer.Layer<never> = Layer.empty,
  wrapRegistry?: (
    registry: McpSessionRegistry.McpSessionRegistry["Service"]
  ) => McpSessionRegistry.McpSessionRegistry["Service"]
) =>
  Effect.gen(function*() {
    const held = yield* Deferred.make<void>()
    const released = yield* Deferred.make<void>()
    const streaming = yield* Deferred.make<void>()
    const proceed = yield* Deferred.make<void>()
    const events: Array<Revocation.RevocationEvent> = []
    const bindings: Array<SessionBinding.SessionBinding> = []
    const stopped: Array<{ readonly revoked: number; readonly live: boolean }> = []
    const registryLayer = McpSessionRegistry.layer({
      ...registryOptions,
      hooks: [(event) => Effect.sync(() => void events.push(event))]
    })
    const HoldLive = McpServer.toolkit(HoldTools).pipe(
      Layer.provide(HoldTools.toLayer(Effect.gen(function*() {
        const registry = yield* McpSessionRegistry.McpSessionRegistry
        const server = yield* McpServer.McpServer
        return {
        hold: () =>
          Deferred.succeed(held, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(released, undefined))
          ),
        stop_self: () =>
          Effect.gen(function*() {
            const caller = yield* McpBearerAuth.CurrentCredential
            const revoked = yield* registry.revokeThread(caller.threadId)
            // Code after the revocation runs: the call is not cut short.
            const live = Option.isSome(yield* registry.get(caller.credentialId))
            stopped.push({ revoked, live })
            return "stopped"
          }).pipe(Effect.orDie),
        stream_slowly: () =>
          server.notifications["notifications/progress"]({ progressToken: "slow", progress: 1, total: 2 }).pipe(
            Effect.andThen(Deferred.succeed(streaming, undefined)),
            Effect.andThen(Deferred.await(proceed)),
            Effect.as("streamed to the end"),
            Effect.onInterrupt(() => Deferred.succeed(released, undefined))
          )
        }
      })))
    )
    return yield* Effect.gen(function*() {
      const server = yield* McpHttpServer.McpHttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      assert.strictEqual(bindings.length, 1)
      return yield* body({
        port: server.port,
        registry,
        binding: bindings[0]!,
        events,
        held,
        released,
        streaming,
        proceed,
        stopped
      })
    }).pipe(
      Effect.provide(
        McpHttpServer.layer({ registrations: Layer.mergeAll(HostToolsLive, HoldLive, extra) }).pipe(
          Layer.provide(Layer.succeed(SessionBinding.Inspect, (binding) => void bindings.push(binding))),
          Layer.provideMerge(
            wrapRegistry === undefined ? registryLayer : Layer.effect(
              McpSessionRegistry.McpSessionRegistry,
              Effect.map(McpSessionRegistry.McpSessionRegistry, wrapRegistry)
            ).pipe(Layer.provide(registryLayer))
          )
        )
      )
    )
  })

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
        // It reads the caller's own credential and nothing else; unannotated,
        // clients would be told it may destroy things and reach the world.
        const sessionInfo = tools.tools.find((tool) => tool.name === "session_info")
        assert.deepInclude(sessionInfo?.annotations, {
          readOnlyHint: true,
          destructiveHint: false,
          idempotentHint: true,
          openWorldHint: false
        })

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
        const { send, open, call } = rawMcp(port)
        const sessionInfo = call("session_info")

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

  it.effect("a revoked credential's sessions end in the transport and leave the binding", () =>
    withBinding({}, ({ port, registry, binding, events, held, released }) =>
      Effect.gen(function*() {
        const { send, open, call, greets } = rawMcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const busy = yield* open(a)
        const idle = yield* open(a)
        const own = yield* open(b)
        assert.deepStrictEqual(binding.size(), { sessions: 3, credentials: 2 })

        // A call still running on A's session when A is revoked.
        const holding = yield* Effect.forkChild(send(a, call("hold"), busy))
        yield* Deferred.await(held)

        assert.isTrue(yield* registry.revoke(a.credentialId))
        assert.deepStrictEqual(events.map((event) => event.reason), ["revoked"])
        // Both bindings go at once; the idle session is ended in the transport
        // at once, the busy one waits for its call.
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })
        assert.strictEqual(binding.draining(), 1)
        sessionNotFound(yield* send(b, call("session_info"), busy))
        // Let the grace timer start before the clock moves.
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        yield* TestClock.adjust("4999 millis")
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isFalse(yield* Deferred.isDone(released))
        assert.strictEqual(binding.draining(), 1)
        // A call blocked past the grace period keeps the session no longer: the
        // transport ends it as a DELETE would, interrupting the call...
        yield* TestClock.adjust("1 millis")
        yield* Deferred.await(released)
        assert.strictEqual((yield* Fiber.join(holding)).status, 404)
        yield* binding.settled
        assert.strictEqual(binding.draining(), 0)
        // ...and it no longer knows either session, where it answered 204 before.
        assert.strictEqual(yield* binding.endInTransport(busy), 404)
        assert.strictEqual(yield* binding.endInTransport(idle), 404)
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })

        // No one reaches A's sessions: not B, not a credential issued after the revocation.
        const c = yield* registry.issue({ threadId: "thread-c", providerInstanceId: "codex" })
        for (const credential of [b, c]) {
          for (const sessionId of [busy, idle]) {
            const refused = yield* send(credential, call("session_info"), sessionId)
            sessionNotFound(refused)
            assert.notInclude(refused.body, "thread-a")
            sessionNotFound(yield* send(credential, undefined, sessionId, "DELETE"))
          }
        }

        // B's own session is untouched, and B can still open another and call tools.
        const still = yield* send(b, call("session_info"), own)
        assert.strictEqual(still.status, 200)
        assert.include(still.body, "\"threadId\":\"thread-b\"")
        const fresh = yield* open(b)
        yield* greets(b, fresh, "ada")
        // C only knocked on sessions it does not own: nothing is kept for it.
        assert.deepStrictEqual(binding.size(), { sessions: 2, credentials: 1 })
      })
    ))

  it.live("revokeThread ends the sessions of every credential of the thread", () =>
    withBinding({}, ({ port, registry, binding, events }) =>
      Effect.gen(function*() {
        const { send, open, call, greets } = rawMcp(port)
        const codex = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const claude = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "claude-code" })
        const other = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const sessions = [yield* open(codex), yield* open(codex), yield* open(claude)]
        const kept = yield* open(other)
        assert.deepStrictEqual(binding.size(), { sessions: 4, credentials: 3 })

        assert.strictEqual(yield* registry.revokeThread("thread-a"), 2)
        assert.deepStrictEqual(events.map((event) => event.reason), ["session-stopped", "session-stopped"])
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })
        // None had a request in flight: nothing waits, and the ending is done.
        assert.strictEqual(binding.draining(), 0)
        yield* binding.settled
        for (const sessionId of sessions) {
          assert.strictEqual(yield* binding.endInTransport(sessionId), 404)
          sessionNotFound(yield* send(other, call("session_info"), sessionId))
        }
        yield* greets(other, kept, "bo")
      })
    ))

  it.effect("a credential gone idle has its sessions ended by the sweep", () =>
    withBinding({ idleTimeout: "10 minutes", sweepInterval: "1 day" }, ({ port, registry, binding, events }) =>
      Effect.gen(function*() {
        const { send, open, call, greets } = rawMcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const session = yield* open(a)
        assert.strictEqual((yield* send(a, call("session_info"), session)).status, 200)
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })

        yield* TestClock.adjust("11 minutes")
        assert.strictEqual(yield* registry.sweep, 1)
        assert.deepStrictEqual(events.map((event) => event.reason), ["idle"])
        assert.deepStrictEqual(binding.size(), { sessions: 0, credentials: 0 })
        yield* binding.settled
        assert.strictEqual(yield* binding.endInTransport(session), 404)

        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        sessionNotFound(yield* send(b, call("session_info"), session))
        const own = yield* open(b)
        yield* greets(b, own, "cy")
      })
    ))

  it.live("a session opened by an initialize in flight while its credential is revoked is ended, not bound", () => {
    // Revokes `armed` after the transport has opened the session of an
    // initialize but before the binding sees it: the race the binding guards.
    const armed: { credentialId?: string } = {}
    const RevokeMidInitialize = HttpRouter.middleware(
      Effect.map(McpSessionRegistry.McpSessionRegistry, (registry) => (httpEffect) =>
        Effect.tap(httpEffect, () => {
          const credentialId = armed.credentialId
          if (credentialId === undefined) return Effect.void
          delete armed.credentialId
          return Effect.orDie(registry.revoke(credentialId))
        })),
      { global: true }
    )
    return withBinding(
      {},
      ({ port, registry, binding, events }) =>
        Effect.gen(function*() {
          const { send, open, call } = rawMcp(port)
          const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
          armed.credentialId = a.credentialId
          const init = yield* send(a, {
            jsonrpc: "2.0",
            id: 1,
            method: "initialize",
            params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
          })
          assert.deepStrictEqual(events.map((event) => event.reason), ["revoked"])
          const opened = init.headers["mcp-session-id"] as string
          assert.isString(opened)
          assert.deepStrictEqual(binding.size(), { sessions: 0, credentials: 0 })
          assert.strictEqual(yield* binding.endInTransport(opened), 404)

          const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
          sessionNotFound(yield* send(b, call("session_info"), opened))
          const own = yield* open(b)
          assert.strictEqual((yield* send(b, call("greet", { name: "di" }), own)).status, 200)
        }),
      // A global router middleware is a layer needing the router, which the server provides.
      RevokeMidInitialize as unknown as Layer.Layer<never>
    )
  })

  it.live("a credential revoked between the guard and the binding is refused as a fresh request, and opens nothing", () => {
    // Revokes an armed credential right after the guard's lookup accepted it,
    // before the request reaches the binding: the revocation hook then finds
    // nothing of this request to mark, and the binding must see for itself,
    // once the body is in, that the credential is gone.
    const armed = new Set<string>()
    const revokeOnResolve = (
      registry: McpSessionRegistry.McpSessionRegistry["Service"]
    ): McpSessionRegistry.McpSessionRegistry["Service"] => ({
      ...registry,
      resolve: (token) =>
        Effect.tap(
          registry.resolve(token),
          (scope) => armed.delete(scope.credentialId) ? Effect.orDie(registry.revoke(scope.credentialId)) : Effect.void
        )
    })
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    }
    return withBinding(
      {},
      ({ port, registry, binding, events }) =>
        Effect.gen(function*() {
          const { send, open, call, greets } = rawMcp(port)
          const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
          const kept = yield* open(b)

          // A credential already tracked: the hook ends its earlier session and
          // drops its holder.
          const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
          const earlier = yield* open(a)
          assert.deepStrictEqual(binding.size(), { sessions: 2, credentials: 2 })
          armed.add(a.credentialId)
          const raced = yield* send(a, initialize)
          // And one never seen before.
          const c = yield* registry.issue({ threadId: "thread-c", providerInstanceId: "codex" })
          armed.add(c.credentialId)
          const fresh = yield* send(c, initialize)
          assert.deepStrictEqual(events.map((event) => event.reason), ["revoked", "revoked"])
          yield* binding.settled

          // Both get the guard's own answer to a revoked token; the transport
          // never saw them, so no session was opened.
          for (const response of [raced, fresh]) {
            assert.strictEqual(response.status, 401)
            assert.isUndefined(response.headers["mcp-session-id"])
            assert.include(response.headers["www-authenticate"], "error=\"invalid_token\"")
            assert.strictEqual(JSON.parse(response.body).error.data.reason, "revoked")
          }
          assert.strictEqual(yield* binding.endInTransport(earlier), 404)
          assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })

          // A sessionless POST that opens nothing leaves no holder behind either.
          const d = yield* registry.issue({ threadId: "thread-d", providerInstanceId: "codex" })
          armed.add(d.credentialId)
          const refused = yield* send(d, call("session_info"))
          assert.strictEqual(refused.status, 401)
          assert.isUndefined(refused.headers["mcp-session-id"])
          assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })

          // The others' sessions are untouched.
          yield* greets(b, kept, "ed")
        }),
      Layer.empty,
      revokeOnResolve
    )
  })

  it.effect("a revoked session streaming an answer over SSE ends when the stream does, not when it starts", () =>
    withBinding({}, ({ port, registry, binding, released, streaming, proceed }) =>
      Effect.gen(function*() {
        const { send, open, call } = rawMcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const session = yield* open(a)
        yield* open(b)
        const progress = {
          ...call("stream_slowly"),
          params: { name: "stream_slowly", arguments: {}, _meta: { progressToken: "slow" } }
        }

        // The answer has started: SSE headers and the progress event are out,
        // while the tool still runs.
        const slow = yield* watchedPost(port, a, progress, session)
        yield* Deferred.await(streaming)
        const head = yield* slow.head
        assert.strictEqual(head.status, 200)
        assert.strictEqual(head.headers["content-type"], "text/event-stream")

        // Revoked mid-stream: unbound at once, but still in flight, so the
        // transport keeps the session until the streamed answer is through.
        assert.isTrue(yield* registry.revoke(a.credentialId))
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })
        assert.strictEqual(binding.draining(), 1)
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isFalse(yield* Deferred.isDone(released))

        yield* Deferred.succeed(proceed, undefined)
        const answer = yield* slow.body
        assert.include(answer, "notifications/progress")
        assert.include(answer, "streamed to the end")
        assert.isFalse(yield* Deferred.isDone(released))
        // Then the session was ended in the transport.
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        yield* binding.settled
        assert.strictEqual(binding.draining(), 0)
        assert.strictEqual(yield* binding.endInTransport(session), 404)

        sessionNotFound(yield* send(b, call("session_info"), session))
      })
    ))

  it.live("an initialize dropped by its client after the transport opened the session ends it, not binds it", () => {
    // Holds an armed request once the transport has answered it (so has
    // opened its session) and before the answer is sent, until the client
    // drops it. Records what reaches the last pre-response handler.
    let armed: Deferred.Deferred<void> | undefined
    const sent: Array<{ readonly status: number; readonly sessionId: string | undefined }> = []
    const HoldAnswer = HttpRouter.middleware(
      Effect.succeed((httpEffect) =>
        Effect.withFiber((fiber) => {
          const holding = armed
          if (holding === undefined) return httpEffect
          armed = undefined
          return Effect.tap(httpEffect, () => {
            HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_, response) =>
              Effect.sync(() => {
                sent.push({ status: response.status, sessionId: response.headers["mcp-session-id"] })
                return response
              }))
            return Effect.andThen(Deferred.succeed(holding, undefined), Effect.interruptible(Effect.never))
          })
        })
      ),
      { global: true }
    )
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    }
    return withBinding(
      {},
      ({ port, registry, binding }) =>
        Effect.gen(function*() {
          const { send, call } = rawMcp(port)
          const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
          const holding = yield* Deferred.make<void>()
          armed = holding
          const dropped = yield* watchedPost(port, a, initialize)
          yield* Deferred.await(holding)
          yield* dropped.drop
          yield* dropped.body
          // The answer never went out, but its pre-response handlers ran, on
          // the interrupted request, with the session the transport opened.
          while (sent.length === 0) yield* Effect.sleep("5 millis")
          const { sessionId, status } = sent[0]!
          assert.strictEqual(status, 499)
          assert.isString(sessionId)
          yield* binding.settled
          // Not bound to its (live) credential, and gone from the transport.
          assert.deepStrictEqual(binding.size(), { sessions: 0, credentials: 1 })
          assert.strictEqual(yield* binding.endInTransport(sessionId!), 404)
          sessionNotFound(yield* send(a, call("session_info"), sessionId))
        }),
      HoldAnswer as unknown as Layer.Layer<never>
    )
  })

  it.live("a tool that revokes its own thread answers its caller, and its session ends after", () =>
    withBinding({}, ({ port, registry, binding, events, stopped }) =>
      Effect.gen(function*() {
        const { send, open, call, greets } = rawMcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const session = yield* open(a)
        const idle = yield* open(a)
        const kept = yield* open(b)
        assert.deepStrictEqual(binding.size(), { sessions: 3, credentials: 2 })

        const answer = yield* send(a, call("stop_self"), session)
        assert.strictEqual(answer.status, 200)
        assert.include(answer.body, "stopped")
        assert.notInclude(answer.body, "\"isError\":true")
        // The code after the revocation ran, and saw the credential gone.
        assert.deepStrictEqual(stopped, [{ revoked: 1, live: false }])
        assert.deepStrictEqual(events.map((event) => event.reason), ["session-stopped"])

        // Then both sessions were ended in the transport and left the binding.
        yield* binding.settled
        assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })
        assert.strictEqual(binding.draining(), 0)
        assert.strictEqual(yield* binding.endInTransport(session), 404)
        assert.strictEqual(yield* binding.endInTransport(idle), 404)
        sessionNotFound(yield* send(b, call("session_info"), session))

        // The other thread's session is untouched.
        yield* greets(b, kept, "fa")
      })
    ))

  it.live("a session ended from the server side answered 204 while the transport held it", () =>
    withBinding({}, ({ port, registry, binding }) =>
      Effect.gen(function*() {
        const { send, open, call } = rawMcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const session = yield* open(a)
        // The probe the tests above rely on tells a held session from a gone one.
        assert.strictEqual(yield* binding.endInTransport(session), 204)
        assert.strictEqual(yield* binding.endInTransport(session), 404)
        // Still bound, but the transport ended it: its owner gets the transport's own 404.
        assert.strictEqual((yield* send(a, call("session_info"), session)).status, 404)
      })
    ))

  it.effect("a whole revocation batch is retired at once, however slowly the transport ends sessions", () => {
    // While `gate` is set, the transport's DELETE waits for it. A revocation
    // hook that waited for the transport would outlive its short timeout
    // below, and the registry would skip it for the rest of the batch: the
    // sessions of every later credential would stay bound and open.
    let gate: Deferred.Deferred<void> | undefined
    const gated = (handler: SessionBinding.RouteHandler): SessionBinding.RouteHandler => (request) =>
      gate === undefined ? handler(request) : Effect.andThen(Deferred.await(gate), handler(request))
    const warnings: Array<string> = []
    const capture = Logger.make((options) => {
      if (options.logLevel === "Warn") warnings.push(inspect(options.message))
    })
    // More than the registry runs one hook over at once (256).
    const count = 300
    return withBinding(
      { hookTimeout: "10 millis", maxCredentialsPerThread: count },
      ({ port, registry, binding, events }) =>
        Effect.gen(function*() {
          const { send, open, call, greets } = rawMcp(port)
          const credentials = yield* Effect.forEach(
            Array.from({ length: count }, (_, i) => i),
            (i) => registry.issue({ threadId: "thread-a", providerInstanceId: `agent-${i}` })
          )
          const sessions = yield* Effect.forEach(credentials, open, { concurrency: 16 })
          const other = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
          const kept = yield* open(other)
          assert.deepStrictEqual(binding.size(), { sessions: count + 1, credentials: count + 1 })

          const opened = yield* Deferred.make<void>()
          gate = opened
          const revoking = yield* Effect.forkChild(registry.revokeThread("thread-a"))
          // Let the hooks start, then run their timeouts out.
          for (let i = 0; i < 10; i++) yield* Effect.yieldNow
          yield* TestClock.adjust("10 millis")
          assert.strictEqual(yield* Fiber.join(revoking), count)
          assert.strictEqual(events.length, count)
          assert.isTrue(events.every((event) => event.reason === "session-stopped"))
          // Every binding went in the revocation itself, while every end in
          // the transport still waits for the gate.
          assert.deepStrictEqual(binding.size(), { sessions: 1, credentials: 1 })
          assert.strictEqual(binding.draining(), 0)
          for (const sessionId of sessions) sessionNotFound(yield* send(other, call("session_info"), sessionId))

          gate = undefined
          yield* Deferred.succeed(opened, undefined)
          yield* binding.settled
          for (const sessionId of sessions) assert.strictEqual(yield* binding.endInTransport(sessionId), 404)
          assert.deepStrictEqual(warnings.filter((line) => line.includes("Revocation hook")), [])

          yield* greets(other, kept, "gu")
        })
    ).pipe(
      Effect.provideService(SessionBinding.TransportDelete, gated),
      Effect.provide(Logger.layer([capture]))
    )
  })

  it.live("refuses to start when the transport cannot end a session from the server side", () =>
    Effect.gen(function*() {
      const start = (standIn: (handler: SessionBinding.RouteHandler) => SessionBinding.RouteHandler | undefined) =>
        Effect.scoped(Layer.build(
          McpHttpServer.layer().pipe(
            Layer.provide(Layer.succeed(SessionBinding.TransportDelete, standIn)),
            Layer.provide(McpSessionRegistry.layer())
          )
        )).pipe(
          // A server that starts fails the test with a plain word, not with its whole context.
          Effect.as("the server started" as const),
          Effect.flip
        )

      // The transport registered no DELETE route: say so at startup, not at
      // the first revocation.
      const none = yield* start(() => undefined)
      assert.instanceOf(none, McpHttpServer.SessionTerminationError)
      assert.strictEqual(none._tag, "SessionTerminationError")
      assert.include(none.message, "at /mcp")
      assert.include(none.message, "registered no DELETE route")
      assert.include(none.message, "sessions of revoked credentials would stay open")

      // Its DELETE route is there but ends nothing (as with session
      // termination turned off).
      const refusing = yield* start(() => () => Effect.succeed(HttpServerResponse.empty({ status: 405 })))
      assert.instanceOf(refusing, McpHttpServer.SessionTerminationError)
      assert.include(refusing.message, "answered 405 for an unknown session")
    }))

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
    const { spans, tracer } = recordingTracer()
    const { logger: capture, lines } = recordingLogger()
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
