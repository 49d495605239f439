import { assert, describe, it } from "@effect/vitest"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import express from "express"
import { spawn } from "node:child_process"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Effect, Queue, Redacted } from "effect"
import * as McpSdk from "../src/McpSdk.ts"
import { McpSessionRegistry, ProviderLaunch } from "../src/index.ts"

// A minimal guarded MCP server: Express, the SDK's requireBearerAuth with our
// verifier, and a stateless Streamable HTTP McpServer whose tool answers with
// the caller's thread and provider instance.
const serveMcp = (verifier: OAuthTokenVerifier) =>
  Effect.acquireRelease(
    Effect.callback<Server>((resume) => {
      const app = express()
      app.use("/mcp", requireBearerAuth({ verifier }), express.json())
      app.post("/mcp", async (req, res) => {
        const server = new McpServer({ name: "host", version: "1.0.0" })
        server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
          const caller = McpSdk.caller(extra.authInfo)
          const whoami = { threadId: caller?.threadId, providerInstanceId: caller?.providerInstanceId }
          return { content: [{ type: "text", text: JSON.stringify(whoami) }] }
        })
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
        res.on("close", () => void transport.close().then(() => server.close()))
        await server.connect(transport)
        await transport.handleRequest(req, res, req.body)
      })
      // Stateless: no server-initiated stream, no session to delete.
      app.all("/mcp", (_req, res) => void res.status(405).set("allow", "POST").end())
      const server = app.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`))

const childPath = fileURLToPath(new URL("./fixtures/genericChild.ts", import.meta.url))

// The child as a provider adapter would launch it: the same Node, the launch
// config's env added to the host's, and no secret on the command line.
const launchChild = (launch: ProviderLaunch.LaunchConfig) =>
  Effect.gen(function*() {
    const lines = yield* Queue.unbounded<any>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", childPath, ...launch.args], {
          env: { ...process.env, ...launch.env },
          stdio: ["pipe", "pipe", "inherit"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.kill())
    )
    createInterface({ input: child.stdout! }).on("line", (line) => Queue.offerUnsafe(lines, JSON.parse(line)))
    return {
      argv: child.spawnargs,
      next: Queue.take(lines),
      again: Effect.sync(() => child.stdin!.write("again\n"))
    }
  })

describe("ProviderLaunch end to end", () => {
  it.live("a child launched with generic calls a tool through the SDK client, then gets 401 once revoked", () =>
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry.McpSessionRegistry
      const endpoint = yield* serveMcp(yield* McpSdk.tokenVerifier())
      const credential = yield* registry.issue({ threadId: "thread-42", providerInstanceId: "generic-agent" })
      const token = Redacted.value(credential.token)
      const launch = yield* ProviderLaunch.generic({ credential, serverName: "host", endpoint })

      const child = yield* launchChild(launch)
      assert.notInclude(child.argv.join(" "), token)

      const first = yield* child.next
      assert.deepStrictEqual(first, { ok: true, whoami: { threadId: "thread-42", providerInstanceId: "generic-agent" } })

      assert.strictEqual(yield* registry.revokeProviderSession(credential.providerSessionId), 1)
      yield* child.again
      const second = yield* child.next
      assert.strictEqual(second.ok, false)
      assert.strictEqual(second.status, 401)
      assert.include(second.message, "the bearer token was revoked")
      assert.notInclude(second.message, token)

      // The same refusal, as any HTTP client sees it.
      const response = yield* Effect.promise(() =>
        fetch(endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: "{}"
        })
      )
      assert.strictEqual(response.status, 401)
      assert.include(response.headers.get("www-authenticate"), `error="invalid_token"`)
    }).pipe(Effect.scoped, Effect.provide(McpSessionRegistry.layer()), Effect.timeout("45 seconds")))
})
