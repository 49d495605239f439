/**
 * What the official SDK's `requireBearerAuth` with this package's verifier
 * sees of a request whose body arrives after its credential was revoked, in
 * a real Express app with the SDK's MCP transport on 127.0.0.1:
 *
 * - with `express.json()` BEFORE `requireBearerAuth` (the documented order),
 *   the token is verified once the whole body is in: refused 401, the tool
 *   never runs;
 * - with `requireBearerAuth` first, it is verified at the headers, and the
 *   body that arrives after the revoke still runs its tool call: the
 *   adapter cannot see past the moment the SDK asks it.
 */
import { assert, describe, it } from "@effect/vitest"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import express from "express"
import type { RequestHandler } from "express"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import * as McpSdk from "../src/McpSdk.ts"
import { createRegistry, type Registry, reveal } from "../src/promise/index.ts"

const call = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: {} } })

/** An SDK server behind `requireBearerAuth`, the body parser `before` or after it. */
const serve = async (registry: Registry, order: "json-first" | "auth-first") => {
  const ran: Array<string | undefined> = []
  let verified: () => void = () => {}
  const verifier = McpSdk.tokenVerifierFromRegistry(registry)
  // Tells the test when the SDK has asked the verifier, and what it answered.
  const watched: OAuthTokenVerifier = {
    verifyAccessToken: (token) => verifier.verifyAccessToken(token).finally(() => verified())
  }
  const auth = requireBearerAuth({ verifier: watched })
  const json = express.json()
  const app = express()
  const chain: Array<RequestHandler> = order === "json-first" ? [json, auth] : [auth, json]
  app.post("/mcp", ...chain, McpSdk.callsInFlightFromRegistry(registry), async (req, res) => {
    const server = new McpServer({ name: "host", version: "1.0.0" })
    server.registerTool("whoami", { description: "Who is calling" }, async (extra) => {
      ran.push(McpSdk.caller(extra.authInfo)?.threadId)
      return { content: [{ type: "text", text: "ok" }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on("close", () => void transport.close().then(() => server.close()))
    await server.connect(transport)
    await transport.handleRequest(req, res, req.body)
  })
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening))
  })
  // The server has the request's head once it emits `request`.
  let headArrived: () => void = () => {}
  server.prependListener("request", () => headArrived())
  const port = (server.address() as AddressInfo).port
  /**
   * Sends the head, waits for `until` ("head": the server has it; "verified":
   * the verifier has answered), runs `between`, then sends the body.
   */
  const lateBody = (
    authorization: string,
    until: "head" | "verified",
    between: () => Promise<unknown>,
    contentType = "application/json"
  ) =>
    new Promise<string>((resolve, reject) => {
      const reached = new Promise<void>((r) => (until === "head" ? (headArrived = r) : (verified = r)))
      const socket = Net.connect(port, "127.0.0.1")
      let out = ""
      socket.on("data", (d) => (out += d.toString()))
      socket.on("close", () => resolve(out))
      socket.on("error", reject)
      socket.on("connect", () => {
        socket.write(
          `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${authorization}\r\n` +
            `Content-Type: ${contentType}\r\nAccept: application/json, text/event-stream\r\n` +
            `Content-Length: ${Buffer.byteLength(call)}\r\nConnection: close\r\n\r\n`
        )
        void reached.then(between).then(() => socket.write(call))
      })
    })
  const close = () => new Promise<void>((r) => {
    server.close(() => r())
    server.closeAllConnections()
  })
  return { ran, lateBody, close }
}

describe("McpSdk verifier: a body that arrives after its credential was revoked", () => {
  it("express.json() before requireBearerAuth: refused 401 revoked, the tool never runs", async () => {
    const registry = await createRegistry()
    const served = await serve(registry, "json-first")
    try {
      const live = await registry.issue({ threadId: "live", providerInstanceId: "codex" })
      const ok = await served.lateBody(reveal(live.authorizationHeader), "head", async () => {})
      assert.match(ok, /^HTTP\/1.1 200/)
      assert.deepStrictEqual(served.ran, ["live"])

      const revoked = await registry.issue({ threadId: "revoked", providerInstanceId: "codex" })
      const refused = await served.lateBody(
        reveal(revoked.authorizationHeader),
        "head",
        () => registry.revoke(revoked.credentialId)
      )
      assert.match(refused, /^HTTP\/1.1 401/)
      assert.include(refused, `error_description="the bearer token was revoked"`)
      assert.notInclude(refused, reveal(revoked.token))
      assert.deepStrictEqual(served.ran, ["live"])
    } finally {
      await served.close()
      await registry.close()
    }
  })

  it("requireBearerAuth first: verified at the headers, so the late body still runs (what the adapter cannot see)", async () => {
    const registry = await createRegistry()
    const served = await serve(registry, "auth-first")
    try {
      const credential = await registry.issue({ threadId: "late", providerInstanceId: "codex" })
      const answered = await served.lateBody(
        reveal(credential.authorizationHeader),
        "verified",
        () => registry.revoke(credential.credentialId)
      )
      // Pinned: the SDK asked before the body came; nothing asks again.
      assert.match(answered, /^HTTP\/1.1 200/)
      assert.deepStrictEqual(served.ran, ["late"])
    } finally {
      await served.close()
      await registry.close()
    }
  })
})
