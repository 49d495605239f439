/**
 * A request whose body completes after its credential was revoked is refused
 * 401 `revoked`, never run: the guard looks the token up once the body is in.
 * A token that is not live is refused before any of its body is read.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Scope } from "effect"
import express from "express"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import { fromService, nodeGuard, webGuard } from "../../src/guard/index.ts"
import { BearerToken, McpSessionRegistry } from "../../src/index.ts"
import { createRegistry } from "../../src/promise/index.ts"
import { listenHono } from "../support/http.ts"

const body = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "whoami", arguments: {} } })

// Sends the head, runs `between`, then sends the body; resolves with the response text.
const lateBody = (port: number, auth: string, between: () => Promise<unknown>, payload = body) =>
  new Promise<string>((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1")
    let out = ""
    socket.on("data", (d) => (out += d.toString()))
    socket.on("close", () => resolve(out))
    socket.on("error", reject)
    socket.on("connect", async () => {
      socket.write(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n`
      )
      await new Promise((r) => setTimeout(r, 50))
      await between()
      socket.write(payload)
    })
  })

// Sends only the head of a POST that promises a megabyte; resolves with what
// the server answered before any of that body ("" if it still waits for it
// after `waitMillis`), and whether it then closed the connection rather than
// wait for the body to discard it.
const headOnly = (port: number, auth: string, waitMillis = 3000) =>
  new Promise<{ readonly answer: string; readonly closed: boolean }>((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1")
    let answer = ""
    // A bound on the wait, not time logic: a guard that reads the body first
    // never answers here, and a server that keeps the connection never ends it.
    const waited = setTimeout(() => {
      socket.destroy()
      resolve({ answer, closed: false })
    }, waitMillis)
    socket.on("data", (d) => (answer += d.toString()))
    socket.on("end", () => {
      clearTimeout(waited)
      socket.destroy()
      resolve({ answer, closed: true })
    })
    socket.on("error", reject)
    socket.on("connect", () => {
      socket.write(
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 1000000\r\n\r\n{`
      )
    })
  })

const serve = async (app: Http.RequestListener) => {
  const server = Http.createServer(app)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) }
}

describe("nodeGuard: body after revoke", () => {
  it("refuses 401 revoked, and passes a normal late body with req.body parsed", async () => {
    const registry = await createRegistry()
    const ran: Array<unknown> = []
    const app = express()
    app.use("/mcp", nodeGuard(registry))
    app.post("/mcp", (req, res) => {
      ran.push(req.body)
      res.json({ ok: true })
    })
    const served = await serve(app)
    try {
      const a = await registry.issue({ threadId: "a", providerInstanceId: "codex" })
      const refused = await lateBody(served.port, Redacted.value(a.authorizationHeader), () => registry.revoke(a.credentialId))
      assert.match(refused, /^HTTP\/1.1 401/)
      assert.include(refused, `"reason":"revoked"`)
      assert.lengthOf(ran, 0)
      const b = await registry.issue({ threadId: "b", providerInstanceId: "codex" })
      const ok = await lateBody(served.port, Redacted.value(b.authorizationHeader), async () => {})
      assert.match(ok, /^HTTP\/1.1 200/)
      assert.deepStrictEqual(ran, [JSON.parse(body)])
      const bad = await lateBody(served.port, Redacted.value(b.authorizationHeader), async () => {}, "{nope")
      assert.match(bad, /^HTTP\/1.1 400/)
      assert.include(bad, `"reason":"parse-error"`)
    } finally {
      await served.close()
      await registry.close()
    }
  })

  it("answers 413 past maxBodySize, before reading it", async () => {
    const registry = await createRegistry()
    const guard = nodeGuard(registry, { maxBodySize: 10 })
    const served = await serve((req, res) => guard(req, res, () => res.end("ran")))
    try {
      const a = await registry.issue({ threadId: "a", providerInstanceId: "codex" })
      const out = await lateBody(served.port, Redacted.value(a.authorizationHeader), async () => {})
      assert.match(out, /^HTTP\/1.1 413/)
      assert.include(out, `"reason":"body-too-large"`)
    } finally {
      await served.close()
      await registry.close()
    }
  })
})

describe("webGuard.handle: body after revoke", () => {
  it("refuses 401 revoked, and hands the handler the body of a normal late request", async () => {
    const registry = await createRegistry()
    const guard = webGuard(registry)
    const ran: Array<string> = []
    const { port, close } = await listenHono((request) =>
      guard.handle(request, async (req) => {
        ran.push(await req.text())
        return new Response("ok")
      })
    )
    try {
      const a = await registry.issue({ threadId: "a", providerInstanceId: "codex" })
      const refused = await lateBody(port, Redacted.value(a.authorizationHeader), () => registry.revoke(a.credentialId))
      assert.match(refused, /^HTTP\/1.1 401/)
      assert.include(refused, `"reason":"revoked"`)
      assert.lengthOf(ran, 0)
      const b = await registry.issue({ threadId: "b", providerInstanceId: "codex" })
      const ok = await lateBody(port, Redacted.value(b.authorizationHeader), async () => {})
      assert.match(ok, /^HTTP\/1.1 200/)
      assert.deepStrictEqual(ran, [body])
    } finally {
      close()
      await registry.close()
    }
  })
})

describe("the guards read no body for a token that is not live", () => {
  // Any client can send a well-formed token: the checksum is public.
  const unknown = `Bearer ${BearerToken.mint()}`

  it("nodeGuard, over the Promise registry and over an Effect one: 401 with the reason at once, and the connection closed", async () => {
    const registry = await createRegistry()
    const scope = Scope.makeUnsafe()
    const service = await Effect.runPromise(Scope.provide(scope)(McpSessionRegistry.make()))
    for (const guarded of [registry, fromService(service)]) {
      const guard = nodeGuard(guarded)
      const served = await serve((req, res) => guard(req, res, () => res.end("ran")))
      try {
        const refused = await headOnly(served.port, unknown)
        assert.match(refused.answer, /^HTTP\/1.1 401/)
        assert.include(refused.answer, `"reason":"unknown"`)
        assert.isTrue(refused.closed)
      } finally {
        await served.close()
      }
    }
    const a = await registry.issue({ threadId: "a", providerInstanceId: "codex" })
    await registry.revoke(a.credentialId)
    const guard = nodeGuard(registry)
    const served = await serve((req, res) => guard(req, res, () => res.end("ran")))
    try {
      const refused = await headOnly(served.port, Redacted.value(a.authorizationHeader))
      assert.match(refused.answer, /^HTTP\/1.1 401/)
      assert.include(refused.answer, `"reason":"revoked"`)
      assert.isTrue(refused.closed)
      // A live token's body is still awaited: the lookup waits for it.
      const b = await registry.issue({ threadId: "b", providerInstanceId: "codex" })
      assert.deepStrictEqual(await headOnly(served.port, Redacted.value(b.authorizationHeader), 300), { answer: "", closed: false })
    } finally {
      await served.close()
      await registry.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("webGuard.handle, with and without the @hono/node-server bindings: 401 at once, and the connection closed", async () => {
    const registry = await createRegistry()
    const guard = webGuard(registry)
    for (const withBindings of [false, true]) {
      const { port, close } = await listenHono((request, env) =>
        guard.handle(request, () => new Response("ran"), withBindings ? env : undefined)
      )
      try {
        const refused = await headOnly(port, unknown)
        assert.match(refused.answer, /^HTTP\/1.1 401/)
        assert.include(refused.answer, `"reason":"unknown"`)
        assert.isTrue(refused.closed)
      } finally {
        close()
      }
    }
    await registry.close()
  })
})
