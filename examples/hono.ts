import type { AddressInfo } from "node:net"
import { type HttpBindings, serve } from "@hono/node-server"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import { Hono } from "hono"
import { caller, type JsonRpcErrorBody, webGuard } from "mcp-session-registry/guard"
import { createRegistry, reveal } from "mcp-session-registry/promise"

const registry = await createRegistry({ idleTimeout: "30 minutes" })
// Without `port`, the default allow-lists take the loopback names at any port.
const guard = webGuard(registry)

const app = new Hono<{ Bindings: HttpBindings }>()
// `handle` answers a refusal itself, or runs the handler with the caller and
// keeps the call in flight until the response body has been sent. `c.env`
// (@hono/node-server's bindings) lets it read Node's raw headers.
app.all("/mcp", (c) =>
  guard.handle(c.req.raw, async (request, { authInfo }) => {
    const server = new McpServer({ name: "host", version: "1.0.0" })
    server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
      const who = caller(extra.authInfo) // { credentialId, threadId, providerSessionId, providerInstanceId, ... }
      return { content: [{ type: "text", text: `${who?.threadId} via ${who?.providerInstanceId}` }] }
    })
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    await server.connect(transport)
    return transport.handleRequest(request, { authInfo })
  }, c.env))

const http = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 })
await new Promise((resolve) => http.once("listening", resolve))
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
http.close()
await registry.close()
