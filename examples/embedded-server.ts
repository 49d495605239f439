import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, Redacted, Schema } from "effect"
import { McpServer, Tool, Toolkit } from "effect/ai"
import { McpBearerAuth, McpHttpServer, McpSessionRegistry } from "mcp-session-registry"

// A tool of the host's own that reads who is calling it.
const WhoAmI = Tool.make("whoami", {
  description: "Which agent session is calling",
  success: Schema.String,
  dependencies: [McpBearerAuth.CurrentCredential]
})
const HostTools = Toolkit.make(WhoAmI)
const HostToolsLive = McpServer.toolkit(HostTools).pipe(
  Layer.provide(HostTools.toLayer({
    whoami: () =>
      Effect.map(McpBearerAuth.CurrentCredential, (caller) => `thread ${caller.threadId}, ${caller.providerInstanceId}`)
  }))
)

// 127.0.0.1, a free port, path /mcp; every request goes through the bearer guard.
const ServerLive = McpHttpServer.layer({ registrations: HostToolsLive }).pipe(
  Layer.provideMerge(McpSessionRegistry.layer({ idleTimeout: "30 minutes" }))
)

const program = Effect.gen(function*() {
  const server = yield* McpHttpServer.McpHttpServer
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  // At spawn the host mints a credential; the agent gets the header in its environment.
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })

  // The agent's side: the official MCP SDK client with its bearer header.
  const text = yield* Effect.promise(async () => {
    const client = new Client({ name: "agent", version: "1.0.0" })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(server.url), {
        requestInit: { headers: { Authorization: Redacted.value(credential.authorizationHeader) } }
      })
    )
    const result = await client.callTool({ name: "whoami", arguments: {} })
    await client.close()
    return (result.content as Array<{ text: string }>)[0]!.text
  })
  console.log(`whoami -> ${text}`)
})

// Leaving the layer stops the server and revokes what is still live.
Effect.runPromise(program.pipe(Effect.provide(ServerLive)))
