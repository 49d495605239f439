/**
 * The embedded server's edge under a hostile client with a valid credential:
 * bodies that arrive after their credential left, JSON-RPC members the
 * transport would read as HTTP headers, sessions and bodies without bound,
 * tokens pasted into the request target, and OAuth probes after a refusal.
 * Each test drives a real server on 127.0.0.1, over raw sockets where
 * `node:http` would not send what an attacker sends.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Net from "node:net"
import { inspect } from "node:util"
import { Deferred, Effect, Fiber, Layer, Logger, Redacted, References, Schema, Tracer } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import { TestClock } from "effect/testing"
import type { Credential } from "../src/index.ts"
import { McpHttpServer, McpSessionRegistry } from "../src/index.ts"
import * as SessionBinding from "../src/internal/sessionBinding.ts"
import { parse, type RawResponse } from "./hardening/rawClient.ts"
import { mcpPostHeaders, rawRequest } from "./support/http.ts"
import { recordingLogger, recordingTracer } from "./support/recording.ts"

// `count` records every call the transport dispatched; `hold` blocks until interrupted.
const Count = Tool.make("count", { success: Schema.Number })
const Hold = Tool.make("hold", { success: Schema.String })
const EdgeTools = Toolkit.make(Count, Hold)

interface World {
  readonly port: number
  readonly registry: McpSessionRegistry.McpSessionRegistry["Service"]
  readonly binding: SessionBinding.SessionBinding
  /** How many `count` calls ran. */
  readonly dispatched: () => number
  /** Resolves once the guard has looked up `n` tokens in all. */
  readonly resolved: (n: number) => Effect.Effect<void>
  readonly held: Deferred.Deferred<void>
  readonly released: Deferred.Deferred<void>
}

/** Runs `body` against the embedded server built with `options`. */
const withEdge = <A, E>(options: McpHttpServer.Options, body: (world: World) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    let calls = 0
    let lookups = 0
    const waiters: Array<{ readonly n: number; readonly done: Deferred.Deferred<void> }> = []
    const held = yield* Deferred.make<void>()
    const released = yield* Deferred.make<void>()
    const bindings: Array<SessionBinding.SessionBinding> = []
    const tools = McpServer.toolkit(EdgeTools).pipe(
      Layer.provide(EdgeTools.toLayer({
        count: () => Effect.sync(() => ++calls),
        hold: () =>
          Deferred.succeed(held, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(released, undefined))
          )
      }))
    )
    // The registry as the guard sees it, counting its lookups.
    const counted = Layer.effect(
      McpSessionRegistry.McpSessionRegistry,
      Effect.map(McpSessionRegistry.McpSessionRegistry, (registry) => ({
        ...registry,
        resolve: (token: string) =>
          Effect.ensuring(
            registry.resolve(token),
            Effect.sync(() => {
              lookups++
              for (const waiter of waiters) if (lookups >= waiter.n) Deferred.doneUnsafe(waiter.done, Effect.void)
            })
          )
      }))
    ).pipe(Layer.provide(McpSessionRegistry.layer()))
    return yield* Effect.gen(function*() {
      const server = yield* McpHttpServer.McpHttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      return yield* body({
        port: server.port,
        registry,
        binding: bindings[0]!,
        dispatched: () => calls,
        resolved: (n) =>
          Effect.suspend(() => {
            if (lookups >= n) return Effect.void
            const done = Deferred.makeUnsafe<void>()
            waiters.push({ n, done })
            return Deferred.await(done)
          }),
        held,
        released
      })
    }).pipe(
      Effect.provide(
        McpHttpServer.layer({ ...options, registrations: tools }).pipe(
          Layer.provide(Layer.succeed(SessionBinding.Inspect, (binding) => void bindings.push(binding))),
          Layer.provideMerge(counted)
        )
      )
    )
  })

const authorization = (credential: Credential.IssuedCredential) => Redacted.value(credential.authorizationHeader)

const initialize = (name = "raw", extra: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name, version: "1", ...extra } }
})
const call = (name: string, id = 2) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {} } })

/** MCP over `node:http`. */
const mcp = (port: number) => {
  const send = (
    credential: Credential.IssuedCredential,
    body: unknown,
    sessionId?: string,
    method = "POST",
    headers: Record<string, string> = {}
  ) =>
    rawRequest({
      port,
      path: "/mcp",
      method,
      headers: {
        ...mcpPostHeaders,
        host: `127.0.0.1:${port}`,
        authorization: authorization(credential),
        "mcp-protocol-version": "2025-11-25",
        ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId }),
        ...headers
      },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
    })
  const open = Effect.fnUntraced(function*(credential: Credential.IssuedCredential, name = "raw") {
    const response = yield* send(credential, initialize(name))
    assert.strictEqual(response.status, 200, response.body)
    const sessionId = response.headers["mcp-session-id"] as string
    assert.isString(sessionId)
    yield* send(credential, { jsonrpc: "2.0", method: "notifications/initialized" }, sessionId)
    return sessionId
  })
  return { send, open }
}

/** The JSON-RPC error of a refusal, checked to be one. */
const jsonRpcError = (
  response: { readonly body: string; readonly headers: Record<string, unknown> },
  id: string | number | null = null
) => {
  assert.include(String(response.headers["content-type"]), "application/json")
  const body = JSON.parse(response.body)
  assert.strictEqual(body.jsonrpc, "2.0")
  assert.strictEqual(body.id, id)
  assert.isNumber(body.error.code)
  // Like the guard's refusals: why, and an OAuth-style code.
  assert.isString(body.error.data.reason)
  assert.isString(body.error.data.error)
  return body.error as {
    readonly code: number
    readonly message: string
    readonly data: { readonly reason: string; readonly error: string }
  }
}

/**
 * One request on its own socket, its head written now and its body when
 * `finish` is called: what a client that holds back its body does.
 */
const heldRequest = (port: number, head: string) =>
  Effect.sync(() => {
    const socket = Net.connect({ host: "127.0.0.1", port, noDelay: true })
    let buffer = Buffer.alloc(0)
    let settle!: (response: RawResponse | undefined) => void
    const answered = new Promise<RawResponse | undefined>((resolve) => settle = resolve)
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      const parsed = parse(buffer)
      if (parsed !== undefined) settle(parsed.response)
    })
    socket.on("error", () => settle(undefined))
    socket.on("close", () => settle(undefined))
    socket.write(head)
    return {
      /** Writes more of the body; false once the server closed the connection. */
      write: (chunk: string | Buffer) => Effect.sync(() => !socket.destroyed && socket.write(chunk)),
      response: Effect.promise(() => answered),
      close: Effect.sync(() => socket.destroy())
    }
  })

const postHead = (
  port: number,
  credential: Credential.IssuedCredential,
  options: { readonly sessionId?: string; readonly contentLength?: number; readonly chunked?: boolean }
) =>
  [
    "POST /mcp HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    `Authorization: ${authorization(credential)}`,
    "Content-Type: application/json",
    "Accept: application/json, text/event-stream",
    "MCP-Protocol-Version: 2025-11-25",
    "Connection: close",
    ...(options.sessionId === undefined ? [] : [`Mcp-Session-Id: ${options.sessionId}`]),
    ...(options.chunked === true ? ["Transfer-Encoding: chunked"] : [`Content-Length: ${options.contentLength ?? 0}`]),
    "",
    ""
  ].join("\r\n")

describe("McpHttpServer at the edge", () => {
  it.live("a body that completes after its credential left is refused as a fresh request, never dispatched", () =>
    withEdge({}, ({ port, registry, dispatched, resolved }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const credential = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const sessionId = yield* open(credential)
        // The same request, live, is dispatched.
        assert.strictEqual((yield* send(credential, call("count"), sessionId)).status, 200)
        assert.strictEqual(dispatched(), 1)

        const bodies = [...Array.from({ length: 6 }, (_, i) => call("count", 10 + i)), initialize("late")]
        const texts = bodies.map((body) => JSON.stringify(body))
        const requests = yield* Effect.forEach(texts, (text, i) =>
          heldRequest(
            port,
            postHead(port, credential, {
              contentLength: Buffer.byteLength(text),
              ...(i < 6 ? { sessionId } : {})
            })
          ))
        // Every head passed the guard while the token was live (3 lookups so far, then 7 more).
        yield* resolved(3 + requests.length)
        assert.strictEqual(yield* registry.revokeThread("thread-a"), 1)
        yield* Effect.forEach(requests, (request, i) => request.write(texts[i]!))
        const responses = yield* Effect.forEach(requests, (request) => request.response)

        const fresh = yield* send(credential, call("count"), sessionId)
        assert.strictEqual(fresh.status, 401)
        const reason = jsonRpcError(fresh).data.reason
        assert.oneOf(reason, ["revoked", "session-stopped"])
        for (const response of responses) {
          assert.isDefined(response)
          assert.strictEqual(response!.status, 401, response!.body)
          assert.strictEqual(jsonRpcError(response!).data.reason, reason)
          assert.strictEqual(response!.headers["www-authenticate"], fresh.headers["www-authenticate"])
          assert.isUndefined(response!.headers["mcp-session-id"])
        }
        assert.strictEqual(dispatched(), 1)
      })
    ))

  it.live("a message with a member JSON-RPC does not define is refused, so no body picks another session", () =>
    withEdge({}, ({ port, registry, dispatched }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const sessionA = yield* open(a, "agent-a")
        const sessionB = yield* open(b, "agent-b")
        const intoA = { headers: [["mcp-session-id", sessionA]] }
        const smuggled: ReadonlyArray<readonly [unknown, string | undefined]> = [
          [{ ...call("count"), ...intoA }, sessionB],
          [{ jsonrpc: "2.0", id: 3, method: "logging/setLevel", params: { level: "debug" }, ...intoA }, sessionB],
          [[call("count", 4), { ...call("count", 5), ...intoA }], sessionB],
          [{ ...call("count"), headers: [["mcp-protocol-version", "2025-03-26"]] }, sessionB],
          [{ ...call("count"), traceId: "00000000000000000000000000000001", spanId: "0000000000000001", sampled: true }, sessionB],
          [{ ...call("count"), discard: true }, sessionB],
          [{ jsonrpc: "2.0", method: "notifications/initialized", ...intoA }, sessionB],
          [{ ...initialize(), headers: [] }, undefined]
        ]
        for (const [body, sessionId] of smuggled) {
          const response = yield* send(b, body, sessionId)
          assert.strictEqual(response.status, 400, JSON.stringify(body))
          const error = jsonRpcError(response)
          assert.strictEqual(error.code, -32600)
          assert.strictEqual(error.data.reason, "invalid-member")
        }
        assert.strictEqual(dispatched(), 0)
        // Plain messages, single and batched, still pass.
        assert.strictEqual((yield* send(b, call("count"), sessionB)).status, 200)
        assert.strictEqual((yield* send(a, call("count"), sessionA)).status, 200)
        assert.strictEqual(dispatched(), 2)
      })
    ))

  it.live("a body that is no JSON, a GET, a wrong Accept or Content-Type: each its own 4xx with a JSON-RPC body", () =>
    withEdge({}, ({ port, registry, dispatched }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const sessionId = yield* open(a)
        const count = call("count")
        const cases: ReadonlyArray<readonly [string, ReturnType<typeof rawRequest>, number, string, number]> = [
          ["no JSON", send(a, "{\"jsonrpc\": \"2.0\", \"id\": 3,", sessionId), 400, "parse-error", -32700],
          ["empty body", send(a, "", sessionId), 400, "parse-error", -32700],
          ["GET", send(a, undefined, sessionId, "GET"), 405, "method-not-allowed", -32600],
          [
            "Accept without text/event-stream",
            send(a, count, sessionId, "POST", { accept: "text/html" }),
            406,
            "not-acceptable",
            -32600
          ],
          [
            "Content-Type text/plain",
            send(a, count, sessionId, "POST", { "content-type": "text/plain" }),
            415,
            "unsupported-media-type",
            -32600
          ]
        ]
        for (const [name, request, status, reason, code] of cases) {
          const response = yield* request
          assert.strictEqual(response.status, status, name)
          assert.strictEqual(response.headers["cache-control"], "no-store", name)
          const error = jsonRpcError(response)
          assert.strictEqual(error.data.reason, reason, name)
          assert.strictEqual(error.code, code, name)
          assert.strictEqual(error.data.error, "invalid_request", name)
          if (status === 405) assert.include(String(response.headers["allow"]), "POST", name)
        }
        assert.strictEqual(dispatched(), 0)
        assert.strictEqual((yield* send(a, call("count"), sessionId)).status, 200)
      })
    ))

  it.live("what the transport refuses with an empty body (batches, calls outside a session) gets a JSON-RPC body", () =>
    withEdge({}, ({ port, registry, dispatched }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const sessionId = yield* open(a)
        const refused: ReadonlyArray<readonly [unknown, string | undefined]> = [
          [[call("count", 4)], sessionId],
          [[call("count", 4)], undefined],
          [[initialize()], undefined],
          ["[1]", sessionId],
          ["[[[[[[[[[[]]]]]]]]]]", undefined]
        ]
        for (const [body, session] of refused) {
          const response = yield* send(a, body, session)
          assert.strictEqual(response.status, 400, JSON.stringify(body))
          const error = jsonRpcError(response)
          assert.strictEqual(error.code, -32600)
          assert.strictEqual(error.data.reason, "transport-refused")
          assert.strictEqual(error.data.error, "invalid_request")
        }
        assert.strictEqual(dispatched(), 0)
        assert.strictEqual((yield* send(a, call("count"), sessionId)).status, 200)
      })
    ))

  it.live("sessions are bounded per credential (429) and in all (503), and an ended one frees its place", () =>
    withEdge({ maxSessionsPerCredential: 2, maxSessions: 3 }, ({ port, registry }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const b = yield* registry.issue({ threadId: "thread-b", providerInstanceId: "codex" })
        const first = yield* open(a)
        yield* open(a)
        // Refused under the initialize's own id, so a client can match the error to it.
        const perCredential = yield* send(a, { ...initialize(), id: "open-3" })
        assert.strictEqual(perCredential.status, 429)
        assert.strictEqual(jsonRpcError(perCredential, "open-3").data.reason, "credential-session-limit")
        assert.isUndefined(perCredential.headers["mcp-session-id"])
        // A batch is answered by an array, so its refusal as a whole keeps id null.
        const batched = yield* send(a, [{ ...initialize(), id: "in-batch" }])
        assert.strictEqual(batched.status, 429)
        assert.strictEqual(jsonRpcError(batched, null).data.reason, "credential-session-limit")
        yield* open(b)
        const global = yield* send(b, { ...initialize(), id: 7 })
        assert.strictEqual(global.status, 503)
        assert.strictEqual(jsonRpcError(global, 7).data.reason, "session-limit")
        // Calls in the open sessions are not initializes: never refused for it.
        assert.strictEqual((yield* send(a, call("count"), first)).status, 200)
        // A DELETE frees a place for its credential, and for everyone.
        assert.strictEqual((yield* send(a, undefined, first, "DELETE")).status, 204)
        yield* open(b)
        assert.strictEqual((yield* send(a, initialize())).status, 503)
      })
    ))

  it.live("by default a credential holds 16 sessions at most", () =>
    withEdge({}, ({ port, registry }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        for (let i = 0; i < 16; i++) yield* open(a)
        assert.strictEqual((yield* send(a, initialize())).status, 429)
      })
    ))

  it.effect("an unused session ends after sessionIdleTimeout, on the clock; a used one lives on", () =>
    withEdge({ sessionIdleTimeout: "10 minutes" }, ({ port, registry, binding }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const idle = yield* open(a)
        const used = yield* open(a)
        const settle = Effect.gen(function*() {
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow
        })
        yield* settle
        yield* TestClock.adjust("6 minutes")
        assert.strictEqual((yield* send(a, call("count"), used)).status, 200)
        yield* settle
        yield* TestClock.adjust("5 minutes")
        yield* settle
        yield* binding.settled
        // Ended as its DELETE would end it: unknown to the transport and to the binding.
        assert.strictEqual((yield* send(a, call("count"), idle)).status, 404)
        assert.strictEqual(yield* binding.endInTransport(idle), 404)
        assert.strictEqual((yield* send(a, call("count"), used)).status, 200)
        assert.deepStrictEqual(binding.size().sessions, 1)
        yield* settle
        yield* TestClock.adjust("11 minutes")
        yield* settle
        assert.deepStrictEqual(binding.size().sessions, 0)
        assert.strictEqual(yield* binding.endInTransport(used), 404)
      })
    ))

  it.live("an initialize payload is bounded by maxInitializeSize (413), the body by maxBodySize (413), never a 500", () =>
    withEdge({ maxBodySize: 64 * 1024 }, ({ port, registry, dispatched }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const big = yield* send(a, initialize("big", { description: "x".repeat(20 * 1024) }))
        assert.strictEqual(big.status, 413)
        assert.strictEqual(jsonRpcError(big).data.reason, "initialize-too-large")
        assert.isUndefined(big.headers["mcp-session-id"])
        const sessionId = yield* open(a)

        // A declared length over the limit is answered before a byte of the body is sent.
        const declared = yield* heldRequest(port, postHead(port, a, { sessionId, contentLength: 600 * 1024 * 1024 }))
        const early = yield* declared.response
        assert.strictEqual(early?.status, 413)
        assert.strictEqual(jsonRpcError(early!).data.reason, "body-too-large")
        yield* declared.close

        // A chunked body is cut at the limit: answered once it passes it, and the connection closed.
        const chunked = yield* heldRequest(port, postHead(port, a, { sessionId, chunked: true }))
        const chunk = Buffer.from(`${(16 * 1024).toString(16)}\r\n${"x".repeat(16 * 1024)}\r\n`)
        let sent = 0
        const response = yield* Effect.raceFirst(
          chunked.response,
          Effect.gen(function*() {
            // At most 4 MiB, far past the limit plus what the server drains.
            while (sent < 4 * 1024 * 1024 && (yield* chunked.write(chunk))) {
              sent += 16 * 1024
              yield* Effect.sleep("1 millis")
            }
            return yield* chunked.response
          })
        )
        assert.strictEqual(response?.status, 413)
        assert.strictEqual(response?.headers["connection"], "close")
        assert.isBelow(sent, 2 * 1024 * 1024)
        yield* chunked.close

        // A body under the limit, and the server, still work.
        assert.strictEqual((yield* send(a, call("count"), sessionId)).status, 200)
        assert.strictEqual(dispatched(), 1)
      })
    ))

  it.live("the default body limit answers a 600 MB declared body with 413, not a 500", () =>
    withEdge({}, ({ port, registry }) =>
      Effect.gen(function*() {
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const request = yield* heldRequest(port, postHead(port, a, { contentLength: 600 * 1024 * 1024 }))
        const response = yield* request.response
        assert.strictEqual(response?.status, 413)
        assert.strictEqual(jsonRpcError(response!).data.reason, "body-too-large")
        yield* request.close
      })
    ))

  it.effect("revocationGrace bounds how long a call in flight keeps a revoked session", () =>
    withEdge({ revocationGrace: "1 second" }, ({ port, registry, binding, held, released }) =>
      Effect.gen(function*() {
        const { open, send } = mcp(port)
        const a = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "codex" })
        const sessionId = yield* open(a)
        const holding = yield* Effect.forkChild(send(a, call("hold"), sessionId))
        yield* Deferred.await(held)
        assert.isTrue(yield* registry.revoke(a.credentialId))
        assert.strictEqual(binding.draining(), 1)
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        yield* TestClock.adjust("999 millis")
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isFalse(yield* Deferred.isDone(released))
        yield* TestClock.adjust("1 millis")
        yield* Deferred.await(released)
        // The call cut off gets a JSON-RPC body, not the transport's empty 404.
        const cut = yield* Fiber.join(holding)
        assert.strictEqual(cut.status, 404)
        assert.strictEqual(jsonRpcError(cut).data.reason, "session-not-found")
        yield* binding.settled
        assert.strictEqual(yield* binding.endInTransport(sessionId), 404)
      })
    ))

  it.live("options that cannot work fail the layer", () =>
    Effect.gen(function*() {
      for (
        const options of [
          { maxBodySize: 0 },
          { maxSessions: -1 },
          { maxSessionsPerCredential: 1.5 },
          { maxInitializeSize: Number.NaN },
          { sessionIdleTimeout: "soon" as never },
          { revocationGrace: "0 millis" }
        ] as ReadonlyArray<McpHttpServer.Options>
      ) {
        const error = yield* Effect.flip(
          Effect.provide(Effect.void, McpHttpServer.layer(options).pipe(Layer.provide(McpSessionRegistry.layer())))
        )
        assert.strictEqual(error._tag, "ServerConfigError", JSON.stringify(options))
      }
    }))

  it.live("a token in the request target reaches no log line and no span, and `;access_token=` is not /mcp", () => {
    const { spans, tracer } = recordingTracer()
    const { logger: capture, lines } = recordingLogger()
    const secrets: Array<string> = []
    return Effect.gen(function*() {
      const server = yield* McpHttpServer.McpHttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
      const token = Redacted.value(credential.token)
      secrets.push(token.slice("mcpsr_".length, 40))
      const encoded = token.replace(/[a-z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)
      const targets = [
        `/mcp/${token}`,
        `/${token}`,
        `/mcp;access_token=${token}`,
        `/mcp;x=1?y=${token}`,
        `/mcp/${encoded}`,
        `/mcp?${encodeURIComponent("t")}=${token}`,
        `/.well-known/oauth-protected-resource/${token}`
      ]
      for (const target of targets) {
        const response = yield* rawRequest({
          port: server.port,
          path: target,
          method: "POST",
          headers: {
            ...mcpPostHeaders,
            host: `127.0.0.1:${server.port}`,
            authorization: Redacted.value(credential.authorizationHeader)
          },
          body: JSON.stringify(call("session_info"))
        })
        // Refused like `?access_token=`, wherever the token sits, the endpoint or not.
        assert.strictEqual(response.status, 400, target)
        assert.notInclude(response.body, secrets[0]!)
      }
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
        assert.isAtLeast(lines.filter((line) => line.includes("Sent HTTP response")).length, 7, "request logging was on")
        assert.isTrue(lines.some((line) => line.includes("<redacted>")), "the path was logged, redacted")
        assert.isAbove(secrets.length, 0)
        for (const text of [...lines, ...spanText]) {
          for (const secret of secrets) assert.notInclude(text, secret)
        }
      }))
    )
  })

  it.live("OAuth discovery and registration probes get a JSON 404, never an empty one", () =>
    withEdge({}, ({ port, registry }) =>
      Effect.gen(function*() {
        const credential = yield* registry.issue({ threadId: "thread-a", providerInstanceId: "opencode" })
        yield* registry.revoke(credential.credentialId)
        const probes: ReadonlyArray<readonly [string, string]> = [
          ["GET", "/.well-known/oauth-protected-resource/mcp"],
          ["GET", "/.well-known/oauth-protected-resource"],
          ["GET", "/.well-known/oauth-authorization-server"],
          ["GET", "/.well-known/openid-configuration"],
          ["POST", "/register"],
          ["GET", "/nothing/here"]
        ]
        for (const [method, path] of probes) {
          const response = yield* rawRequest({
            port,
            path,
            method,
            headers: {
              host: `127.0.0.1:${port}`,
              authorization: authorization(credential),
              "content-type": "application/json"
            },
            ...(method === "POST" ? { body: "{\"client_name\":\"opencode\"}" } : {})
          })
          assert.strictEqual(response.status, 404, path)
          assert.strictEqual(jsonRpcError(response).data.reason, "not-found", path)
        }
        // The endpoint itself still answers the revoked token with its reason.
        const refused = yield* mcp(port).send(credential, call("count"))
        assert.strictEqual(refused.status, 401)
        assert.strictEqual(jsonRpcError(refused).data.reason, "revoked")
      })
    ))
})
