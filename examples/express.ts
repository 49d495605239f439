import type { AddressInfo } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import express from "express"
import { caller, type JsonRpcErrorBody, nodeGuard } from "mcp-session-registry/guard"
import { createRegistry, reveal } from "mcp-session-registry/promise"

const registry = await createRegistry({ idleTimeout: "30 minutes" })

const app = express()
// The guard answers every refusal itself and puts the caller on `req.auth`,
// which the SDK's transport hands to tool handlers as `extra.authInfo`.
// The guard reads and parses the JSON body itself (bounded), so it looks the
// token up only once the body is complete; no express.json() needed.
app.use("/mcp", nodeGuard(registry))
app.post("/mcp", async (req, res) => {
  const server = new McpServer({ name: "host", version: "1.0.0" })
  server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
    const who = caller(extra.authInfo) // { credentialId, threadId, providerSessionId, providerInstanceId, ... }
    return { content: [{ type: "text", text: `${who?.threadId} via ${who?.providerInstanceId}` }] }
  })
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
  res.on("close", () => void transport.close().then(() => server.close()))
  await server.connect(transport)
  await transport.handleRequest(req, res, req.body)
})
const listener = app.listen(0, "127.0.0.1")
await new Promise((resolve) => listener.once("listening", resolve))
const url = new URL(`http://127.0.0.1:${(listener.address() as AddressInfo).port}/mcp`)

// Without a token: the guard's 401, with a JSON-RPC body an MCP client can show.
const anonymous = await fetch(url, { method: "POST", body: "{}" })
const refusal = (await anonymous.json()) as JsonRpcErrorBody
console.log(`no token -> ${anonymous.status} ${refusal.error.data.reason}`)

// Mint a credential for an agent session, then call as that agent would.
const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
const client = new Client({ name: "agent", version: "1.0.0" })
await client.connect(new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: reveal(credential.authorizationHeader) } }
}))
const result = await client.callTool({ name: "whoami", arguments: {} })
console.log(`whoami -> ${(result.content as Array<{ text: string }>)[0]!.text}`)

await client.close()
listener.closeAllConnections()
listener.close()
await registry.close()
