import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import { Hono } from "hono"
import { caller, type GuardRegistry, type NodeBindings, webGuard } from "../../src/guard/index.ts"
import { BearerToken } from "../../src/index.ts"
import { createRegistry, type CredentialScope as Credential, type Registry, StoreUnavailable } from "../../src/promise/index.ts"
import { listenHono } from "../support/http.ts"

const port = 8787
const origin = `http://127.0.0.1:${port}`

const request = (path: string, headers: Record<string, string> = {}) =>
  new Request(`${origin}${path}`, { headers: { host: `127.0.0.1:${port}`, ...headers } })

const bodyOf = async (response: Response) => JSON.parse(await response.text())

describe("webGuard over the Promise registry", () => {
  let registry: Registry
  beforeAll(async () => {
    registry = await createRegistry()
  })
  afterAll(() => registry.close())

  it("hands out the caller, as the credential and as the SDK's AuthInfo, synchronously on the memory store", async () => {
    const guard = webGuard(registry, { port })
    const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
    const outcome = guard.check(request("/mcp", { authorization: Redacted.value(credential.authorizationHeader) }))
    // No Promise: the memory store answers in the call.
    assert.notInstanceOf(outcome, Promise)
    assert.notInstanceOf(outcome, Response)
    const { authInfo, credential: scope } = outcome as Exclude<typeof outcome, Response | Promise<unknown>>
    assert.strictEqual(scope.credentialId, credential.credentialId)
    assert.strictEqual(caller(authInfo)?.threadId, "thread-1")
    assert.strictEqual(authInfo.token, Redacted.value(credential.token))
    assert.notInclude(JSON.stringify(authInfo), Redacted.value(credential.token))
  })

  it("refuses with the shared rules' Response: status, headers and JSON-RPC body", async () => {
    const guard = webGuard(registry, { port })
    const credential = await registry.issue({ threadId: "thread-2", providerInstanceId: "claude-code" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const none = await guard.check(request("/mcp"))
    assert.instanceOf(none, Response)
    const refused = none as Response
    assert.strictEqual(refused.status, 401)
    assert.strictEqual(refused.headers.get("www-authenticate"), `Bearer realm="mcp"`)
    assert.strictEqual(refused.headers.get("content-type"), "application/json")
    assert.strictEqual(refused.headers.get("cache-control"), "no-store")
    assert.deepStrictEqual((await bodyOf(refused)).error.data, { reason: "no-credentials", error: "invalid_request" })

    const cases: ReadonlyArray<readonly [Request, number, string]> = [
      [request(`/mcp/${Redacted.value(credential.token)}`, { authorization }), 400, "target-token"],
      [request(`/mcp?access_token=x`, { authorization }), 400, "query-token"],
      [new Request(`http://evil.example/mcp`, { headers: { authorization } }), 403, "host"],
      [request("/mcp", { authorization, host: "evil.example" }), 403, "host"],
      [request("/mcp", { authorization, origin: "http://evil.example" }), 403, "origin"],
      [request("/mcp", { authorization: "Basic x" }), 401, "scheme"],
      [request("/mcp", { authorization: `Bearer ${BearerToken.mint()}` }), 401, "unknown"]
    ]
    for (const [input, status, reason] of cases) {
      const response = await guard.check(input)
      assert.instanceOf(response, Response, reason)
      assert.strictEqual((response as Response).status, status, reason)
      assert.strictEqual((await bodyOf(response as Response)).error.data.reason, reason)
    }
    // Any port on loopback when the guard was told none.
    const anyPort = webGuard(registry)
    const elsewhere = await anyPort.check(
      new Request("http://localhost:9999/mcp", { headers: { authorization, origin: "HTTP://LOCALHOST:9999" } })
    )
    assert.notInstanceOf(elsewhere, Response)
  })

  it("handle: the call stays in flight until the response body has been read or cancelled", async () => {
    const events: Array<string> = []
    const counting: GuardRegistry = {
      lookup: (token) => registry.lookup(token),
      beginCall: () => {
        events.push("begin")
        return () => void events.push("end")
      }
    }
    const guard = webGuard(counting, { port })
    const credential = await registry.issue({ threadId: "thread-3", providerInstanceId: "codex" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const chunks = ["one ", "two"]
    const streaming = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            const next = chunks.shift()
            if (next === undefined) controller.close()
            else controller.enqueue(new TextEncoder().encode(next))
          }
        }),
        { status: 200, headers: { "content-type": "text/event-stream" } }
      )

    const response = await guard.handle(request("/mcp", { authorization }), (_request, { credential: scope }) => {
      events.push(`handler ${scope.threadId}`)
      return streaming()
    })
    assert.deepStrictEqual(events, ["begin", "handler thread-3"])
    assert.strictEqual(response.status, 200)
    assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
    assert.strictEqual(await response.text(), "one two")
    assert.deepStrictEqual(events, ["begin", "handler thread-3", "end"])

    // Cancelled by the client half way.
    events.length = 0
    chunks.push("a", "b", "c")
    const cancelled = await guard.handle(request("/mcp", { authorization }), () => streaming())
    const reader = cancelled.body!.getReader()
    await reader.read()
    assert.deepStrictEqual(events, ["begin"])
    await reader.cancel()
    assert.deepStrictEqual(events, ["begin", "end"])

    // A handler that throws, or answers without a body, ends the call at once.
    events.length = 0
    await guard.handle(request("/mcp", { authorization }), () => new Response(null, { status: 202 }))
    assert.deepStrictEqual(events, ["begin", "end"])
    events.length = 0
    let thrown: unknown
    await guard.handle(request("/mcp", { authorization }), () => {
      throw new Error("handler failed")
    }).catch((error: unknown) => (thrown = error))
    assert.strictEqual((thrown as Error).message, "handler failed")
    assert.deepStrictEqual(events, ["begin", "end"])

    // A response the guard cannot pass through (its body already locked, or
    // no Response at all: a host's bug) fails the request, and ends its call:
    // left open, the credential would never go idle.
    for (const broken of [
      () => {
        const locked = new Response("taken")
        locked.body!.getReader()
        return locked
      },
      () => "not a Response" as unknown as Response
    ]) {
      events.length = 0
      const failed = await guard.handle(request("/mcp", { authorization }), broken).then(() => undefined, (error: unknown) => error)
      assert.instanceOf(failed, TypeError)
      assert.deepStrictEqual(events, ["begin", "end"])
    }

    // A refusal runs no handler and begins nothing.
    events.length = 0
    const refused = await guard.handle(request("/mcp"), () => {
      throw new Error("must not run")
    })
    assert.strictEqual(refused.status, 401)
    assert.deepStrictEqual(events, [])
  })

  it("handle: one lookupCall where the registry has it; a refused capability ends its call at once", async () => {
    const events: Array<string> = []
    const tracking: GuardRegistry = {
      lookup: (token) => registry.lookup(token),
      beginCall: () => {
        throw new Error("lookupCall is there: beginCall must not be called")
      },
      lookupCall: (token) => {
        const found = registry.lookupCall(token)
        if (typeof (found as { then?: unknown }).then === "function" || "_tag" in (found as object)) {
          return found as Awaited<typeof found>
        }
        const call = found as { readonly scope: Credential; readonly end: () => void }
        events.push("begin")
        return { scope: call.scope, end: () => (call.end(), void events.push("end")) }
      }
    }
    const credential = await registry.issue({ threadId: "thread-4", providerInstanceId: "codex" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const guard = webGuard(tracking, { port })
    const response = await guard.handle(request("/mcp", { authorization }), (_request, caller) =>
      new Response(caller.credential.threadId))
    assert.deepStrictEqual(events, ["begin"])
    assert.strictEqual(await response.text(), "thread-4")
    assert.deepStrictEqual(events, ["begin", "end"])
    events.length = 0
    const admin = webGuard(tracking, { port, requiredCapability: "admin" })
    const refused = await admin.handle(request("/mcp", { authorization }), () => {
      throw new Error("must not run")
    })
    assert.strictEqual(refused.status, 403)
    assert.deepStrictEqual(events, ["begin", "end"])
  })

  it("a store that cannot answer: 503 with Retry-After; a lookup that throws: 401 unverifiable", async () => {
    const errors: Array<unknown> = []
    const token = BearerToken.mint()
    const down = webGuard({
      lookup: () => Promise.resolve(new StoreUnavailable({ reason: "unreachable", operation: "resolve" })),
      beginCall: () => () => {}
    }, { port })
    const unavailable = await down.check(request("/mcp", { authorization: `Bearer ${token}` }))
    assert.instanceOf(unavailable, Response)
    assert.strictEqual((unavailable as Response).status, 503)
    assert.strictEqual((unavailable as Response).headers.get("retry-after"), "1")
    assert.strictEqual((await bodyOf(unavailable as Response)).error.code, -32004)

    const broken = webGuard({
      lookup: () => {
        throw new Error("gone")
      },
      beginCall: () => () => {}
    }, { port, onError: (error) => void errors.push(error) })
    const unverifiable = await broken.check(request("/mcp", { authorization: `Bearer ${token}` }))
    assert.strictEqual((unverifiable as Response).status, 401)
    assert.strictEqual((await bodyOf(unverifiable as Response)).error.data.reason, "unverifiable")
    assert.strictEqual(errors.length, 1)
  })
})

describe("webGuard.handle behind a middleware that read the body (Hono's c.req.json())", () => {
  it("looks the token up at once instead of reading the body again (a 500), with and without the bindings", async () => {
    const registry = await createRegistry()
    const guard = webGuard(registry)
    const seen: Array<unknown> = []
    const app = new Hono<{ Bindings: NodeBindings }>()
    // A validating middleware before the guard: the body is read in full.
    app.use("*", async (c, next) => {
      seen.push(await c.req.json())
      await next()
    })
    app.post("/bound", (c) => guard.handle(c.req.raw, (_request, { credential }) => new Response(credential.threadId), c.env))
    app.post("/plain", (c) => guard.handle(c.req.raw, (_request, { credential }) => new Response(credential.threadId)))
    const server = await listenHono((request, env) => app.fetch(request, env))
    try {
      const credential = await registry.issue({ threadId: "thread-9", providerInstanceId: "codex" })
      const authorization = Redacted.value(credential.authorizationHeader)
      const post = (path: string) =>
        fetch(`http://127.0.0.1:${server.port}${path}`, {
          method: "POST",
          headers: { authorization, "content-type": "application/json" },
          body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`
        })
      for (const path of ["/bound", "/plain"]) {
        const response = await post(path)
        assert.strictEqual(response.status, 200, path)
        assert.strictEqual(await response.text(), "thread-9", path)
      }
      assert.deepStrictEqual(seen, [{ jsonrpc: "2.0", id: 1, method: "ping" }, { jsonrpc: "2.0", id: 1, method: "ping" }])
      await registry.revoke(credential.credentialId)
      for (const path of ["/bound", "/plain"]) {
        const refused = await post(path)
        assert.strictEqual(refused.status, 401, path)
        assert.strictEqual((await bodyOf(refused)).error.data.reason, "revoked", path)
      }
    } finally {
      server.close()
      await registry.close()
    }
  })
})
