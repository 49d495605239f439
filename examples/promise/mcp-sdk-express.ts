import type { AddressInfo } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import express from "express"
import * as McpSdk from "mcp-session-registry/mcp-sdk"
import { createRegistry, reveal } from "mcp-session-registry/promise"

// One registry: the verifier and the code that mints share it.
const registry = await createRegistry()

const app = express()
app.use(
  "/mcp",
  express.json(), // first: the verifier then runs once the whole body is in
  requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRegistry(registry) }),
  McpSdk.callsInFlightFromRegistry(registry) // a tool call in flight keeps its session
)
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
const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
const client = new Client({ name: "agent", version: "1.0.0" })
await client.connect(new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: reveal(credential.authorizationHeader) } }
}))
const result = await client.callTool({ name: "whoami", arguments: {} })
console.log(`whoami -> ${(result.content as Array<{ text: string }>)[0]!.text}`)

await client.close()
listener.close()
await registry.close()
