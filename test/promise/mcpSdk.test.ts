import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js"
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js"
import express from "express"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as McpSdk from "../../src/McpSdk.ts"
import { createRegistry, reveal, StoreUnavailable } from "../../src/promise/index.ts"

const servers: Array<Server> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
  vi.restoreAllMocks()
})

// An Express app guarded by the SDK's own middleware, on loopback port 0.
const serve = (verifier: OAuthTokenVerifier): Promise<string> =>
  new Promise((resolve) => {
    const app = express()
    app.get("/mcp", requireBearerAuth({ verifier }), (req, res) => {
      res.json({ caller: McpSdk.caller(req.auth), tokenMatches: req.auth?.token === req.headers.authorization?.slice(7) })
    })
    const server = app.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`))
    servers.push(server)
  })

const call = async (url: string, token: string) => {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, wwwAuthenticate: response.headers.get("www-authenticate"), body: (await response.json()) as any }
}

describe("McpSdk.tokenVerifierFromRegistry", () => {
  it("lets a live token through as AuthInfo and refuses a revoked one with 401", async () => {
    const registry = await createRegistry()
    try {
      const url = await serve(McpSdk.tokenVerifierFromRegistry(registry))
      const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "codex", capabilities: ["tools"] })
      const token = reveal(credential.token)
      const ok = await call(url, token)
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(ok.body.caller.credentialId, credential.credentialId)
      assert.strictEqual(ok.body.caller.threadId, "thread-1")
      assert.isTrue(ok.body.tokenMatches)

      await registry.revoke(credential.credentialId)
      const refused = await call(url, token)
      assert.strictEqual(refused.status, 401)
      assert.include(refused.wwwAuthenticate, `error_description="the bearer token was revoked"`)
      assert.notInclude(JSON.stringify(refused), token)

      const live = reveal((await registry.issue({ threadId: "thread-2", providerInstanceId: "codex" })).token)
      await registry.close()
      // A closed registry lets nothing through.
      assert.strictEqual((await call(url, live)).status, 401)
    } finally {
      await registry.close()
    }
  })

  it("answers a store that cannot answer with temporarily_unavailable, never 401 or 500", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {})
    const url = await serve(McpSdk.tokenVerifierFromRegistry({
      lookup: () => Promise.resolve(new StoreUnavailable({ reason: "timeout", operation: "resolve" }))
    }))
    const reply = await call(url, "mcpsr_" + "A".repeat(49))
    assert.strictEqual(reply.status, 400)
    assert.strictEqual(reply.body.error, "temporarily_unavailable")
  })

  it("refuses with 401, not 500, when the lookup itself throws", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {})
    const url = await serve(McpSdk.tokenVerifierFromRegistry({
      lookup: () => {
        throw new Error("not a registry")
      }
    }))
    const reply = await call(url, "mcpsr_" + "A".repeat(49))
    assert.strictEqual(reply.status, 401)
    assert.include(reply.wwwAuthenticate, McpSdk.unverifiableDescription)
  })
})
