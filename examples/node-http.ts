import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { caller, type GuardedRequest, type JsonRpcErrorBody, nodeGuard } from "mcp-session-registry/guard"
import { createRegistry, reveal } from "mcp-session-registry/promise"

const registry = await createRegistry({ idleTimeout: "30 minutes" })
const guard = nodeGuard(registry)

// One MCP server per request (stateless): its tool reads the caller the guard found.
const handleMcp = async (req: Parameters<typeof guard>[0], res: Parameters<typeof guard>[1]) => {
  const server = new McpServer({ name: "host", version: "1.0.0" })
  server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
    const who = caller(extra.authInfo) // { credentialId, threadId, providerSessionId, providerInstanceId, ... }
    return { content: [{ type: "text", text: `${who?.threadId} via ${who?.providerInstanceId}` }] }
  })
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
  res.on("close", () => void transport.close().then(() => server.close()))
  await server.connect(transport)
  await transport.handleRequest(req, res, (req as GuardedRequest).body) // the guard read and parsed it
}

// The guard answers every refusal itself; `next` runs only for a live token.
const http = createServer((req, res) => guard(req, res, () => void handleMcp(req, res)))
await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
const url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`)

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
http.closeAllConnections()
http.close()
await registry.close()
