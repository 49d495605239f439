/**
 * Calls in flight through a real server: the embedded MCP server on
 * 127.0.0.1, the official SDK client, a tool that runs longer than the idle
 * timeout. Time is the test's `TestClock`: the registry, the sweeper and the
 * tool's own sleep all run on it, so five seconds of tool time take none.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Redacted, Schema, Stream } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { TestClock } from "effect/testing"
import type { Credential, RegistryConfig } from "../src/index.ts"
import { McpHttpServer, McpSessionRegistry } from "../src/index.ts"
import { rawRequest } from "./support/http.ts"

const Slow = Tool.make("slow", { parameters: Tool.EmptyParams, success: Schema.String })
const SlowTools = Toolkit.make(Slow)

const connect = (url: string, credential: Credential.IssuedCredential) =>
  Effect.promise(async () => {
    const client = new Client({ name: "test-agent", version: "1.0.0" })
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: Redacted.value(credential.authorizationHeader) } }
    })
    await client.connect(transport)
    return client
  })

/** A five-second tool call on a registry with a two-second idle timeout; what is left 1.5 s after its answer. */
const longCall = (options: RegistryConfig.Options) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const tools = McpServer.toolkit(SlowTools).pipe(
      Layer.provide(SlowTools.toLayer({
        slow: () => Effect.andThen(Deferred.succeed(started, undefined), Effect.as(Effect.sleep("5 seconds"), "done"))
      }))
    )
    return yield* Effect.gen(function*() {
      const server = yield* McpHttpServer.McpHttpServer
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "claude" })
      const client = yield* connect(server.url, credential)
      const calling = yield* Effect.forkChild(Effect.promise(() => client.callTool({ name: "slow", arguments: {} })))
      yield* Deferred.await(started)
      // Past the idle timeout while the call runs, the sweeper at work every 250 ms.
      for (let t = 0; t < 5_000; t += 250) yield* TestClock.adjust(250)
      const answer = yield* Fiber.join(calling)
      yield* TestClock.adjust(1_500)
      yield* registry.sweep
      const left = yield* registry.get(credential.credentialId)
      yield* Effect.promise(() => client.close()).pipe(Effect.ignore)
      return { answer, left }
    }).pipe(
      Effect.provide(
        McpHttpServer.layer({ registrations: tools }).pipe(
          Layer.provideMerge(McpSessionRegistry.layer({ idleTimeout: "2 seconds", sweepInterval: 250, ...options }))
        )
      )
    )
  })

describe("calls in flight through the embedded server", () => {
  it.effect("a 5 s tool call under a 2 s idle timeout answers, and its end keeps the credential alive", () =>
    Effect.gen(function*() {
      const { answer, left } = yield* longCall({})
      assert.deepStrictEqual(answer.content, [{ type: "text", text: "done" }])
      assert.isTrue(Option.isSome(left), "credential reclaimed")
      // The answer's end was its last use: 1.5 s before now.
      assert.strictEqual(Option.getOrThrow(left).idleExpiresAt, Option.getOrThrow(left).lastUsedAt + 2_000)
    }))

  it.effect("under slideOnUse: false the same call keeps nothing alive: the credential dies idle", () =>
    Effect.gen(function*() {
      const { left } = yield* longCall({ slideOnUse: false })
      assert.isTrue(Option.isNone(left))
    }))
})

describe("calls in flight through the guard middleware", () => {
  it.effect("a streamed answer keeps its credential from going idle until the stream ends", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      // Answers at once with a body that takes five seconds to finish.
      const Routes = HttpRouter.add(
        "GET",
        "/stream",
        Effect.succeed(HttpServerResponse.stream(
          Stream.fromEffect(Effect.as(Deferred.succeed(started, undefined), new TextEncoder().encode("a"))).pipe(
            Stream.concat(Stream.fromEffect(Effect.as(Effect.sleep("5 seconds"), new TextEncoder().encode("b"))))
          )
        ))
      )
      return yield* Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        const registry = yield* McpSessionRegistry.McpSessionRegistry
        const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "codex" })
        const streaming = yield* Effect.forkChild(rawRequest({
          port,
          path: "/stream",
          headers: { host: `127.0.0.1:${port}`, authorization: Redacted.value(credential.authorizationHeader) }
        }))
        yield* Deferred.await(started)
        for (let t = 0; t < 5_000; t += 250) yield* TestClock.adjust(250)
        const response = yield* Fiber.join(streaming)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.body, "ab")
        yield* TestClock.adjust(1_500)
        yield* registry.sweep
        const left = Option.getOrThrow(yield* registry.get(credential.credentialId))
        // The stream's end was the last use.
        assert.strictEqual(left.lastUsedAt, 5_000)
      }).pipe(
        Effect.provide(
          McpHttpServer.layerGuarded(Routes).pipe(
            Layer.provideMerge(McpSessionRegistry.layer({ idleTimeout: "2 seconds", sweepInterval: 250 }))
          )
        )
      )
    }))
})
