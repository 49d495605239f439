import { Effect, Layer, Redacted } from "effect"
import { McpHttpServer, McpSessionRegistry } from "mcp-session-registry"

// Every bound at its default but two: an endpoint for one agent at a time.
const ServerLive = McpHttpServer.layer({
  maxBodySize: 1024 * 1024,
  maxSessionsPerCredential: 4,
  maxSessions: 64,
  sessionIdleTimeout: "10 minutes",
  revocationGrace: "2 seconds"
}).pipe(Layer.provideMerge(McpSessionRegistry.layer()))

const program = Effect.gen(function*() {
  const server = yield* McpHttpServer.McpHttpServer
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
  // A body that names another session in a `headers` member is refused before the transport reads it.
  const response = yield* Effect.promise(() =>
    fetch(server.url, {
      method: "POST",
      headers: {
        authorization: Redacted.value(credential.authorizationHeader),
        "content-type": "application/json",
        accept: "application/json, text/event-stream"
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
        headers: [["mcp-session-id", "someone-else"]]
      })
    })
  )
  const body = (yield* Effect.promise(() => response.json())) as { error: { data: { reason: string } } }
  console.log(`${response.status} ${body.error.data.reason}`) // 400 invalid-member
})

Effect.runPromise(program.pipe(Effect.provide(ServerLive)))
