import type { AddressInfo } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Effect, ManagedRuntime, Redacted } from "effect"
import express from "express"
import { McpSessionRegistry } from "mcp-session-registry"
import * as McpSdk from "mcp-session-registry/mcp-sdk"

// One runtime holds the registry: the verifier and the code that mints share it.
const runtime = ManagedRuntime.make(McpSessionRegistry.layer())

const app = express()
// The body parser runs first: requireBearerAuth verifies when it runs, so the
// token is checked only once the whole body is in.
app.use("/mcp", express.json(), requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRuntime(runtime) }))
app.post("/mcp", async (req, res) => {
  const server = new McpServer({ name: "host", version: "1.0.0" })
  server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
    const caller = McpSdk.caller(extra.authInfo) // { credentialId, threadId, providerSessionId, ... }
    return { content: [{ type: "text", text: `${caller?.threadId} / ${caller?.providerInstanceId}` }] }
  })
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
  res.on("close", () => void transport.close().then(() => server.close()))
  await server.connect(transport)
  await transport.handleRequest(req, res, req.body)
})
const listener = app.listen(0, "127.0.0.1")
await new Promise((resolve) => listener.once("listening", resolve))
const url = new URL(`http://127.0.0.1:${(listener.address() as AddressInfo).port}/mcp`)

// Mint a credential for an agent session, then call as that agent would.
const credential = await runtime.runPromise(Effect.flatMap(
  Effect.service(McpSessionRegistry.McpSessionRegistry),
  (registry) => registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
))
const client = new Client({ name: "agent", version: "1.0.0" })
await client.connect(new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: Redacted.value(credential.authorizationHeader) } }
}))
const result = await client.callTool({ name: "whoami", arguments: {} })
console.log(`whoami -> ${(result.content as Array<{ text: string }>)[0]!.text}`)

await client.close()
listener.close()
await runtime.dispose()
