import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import express from "express"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { caller, fromService, type GuardedRequest, type GuardRegistry, nodeGuard } from "../../src/guard/index.ts"
import { BearerToken, McpHttpServer, McpSessionRegistry } from "../../src/index.ts"
import { createRegistry, type Registry, StoreUnavailable } from "../../src/promise/index.ts"
import { pool } from "../hardening/rawClient.ts"
import { type RawHeaders, rawRequest } from "../support/http.ts"

const isPromise = <A>(value: A | PromiseLike<A>): value is PromiseLike<A> =>
  typeof (value as { then?: unknown }).then === "function"

/** Serves `listener` on 127.0.0.1, a free port, for the test. */
const listen = async (listener: Http.RequestListener) => {
  const server = Http.createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return { server, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

const get = (port: number, path: string, headers: Record<string, string | ReadonlyArray<string>> = {}) =>
  Effect.runPromise(rawRequest({ port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }))

// Answers with what the handler saw on `req.auth`.
const whoami = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
  const auth = (req as GuardedRequest).auth
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify({ caller: caller(auth), auth, token: auth?.token }))
}

describe("nodeGuard over the Promise registry (node:http)", () => {
  let registry: Registry
  let served: Awaited<ReturnType<typeof listen>>
  beforeAll(async () => {
    registry = await createRegistry()
    const guard = nodeGuard(registry)
    served = await listen((req, res) => guard(req, res, () => whoami(req, res)))
  })
  afterAll(async () => {
    await served.close()
    await registry.close()
  })

  it("lets a live token through with the caller on req.auth, in the SDK's AuthInfo shape", async () => {
    const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "codex", capabilities: ["read"] })
    const token = Redacted.value(credential.token)
    const response = await get(served.port, "/mcp", { authorization: `Bearer ${token}` })
    assert.strictEqual(response.status, 200)
    const body = JSON.parse(response.body)
    assert.strictEqual(body.caller.credentialId, credential.credentialId)
    assert.strictEqual(body.caller.threadId, "thread-1")
    assert.strictEqual(body.auth.clientId, "codex")
    assert.deepStrictEqual(body.auth.scopes, ["read"])
    // The handler can read the token; serializing the AuthInfo does not print it.
    assert.strictEqual(body.token, token)
    assert.isUndefined(body.auth.token)
  })

  it("refuses as every guard does: no token, a revoked one, a token in the URL, a foreign Host or Origin", async () => {
    const credential = await registry.issue({ threadId: "thread-2", providerInstanceId: "codex" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const none = await get(served.port, "/mcp")
    assert.strictEqual(none.status, 401)
    assert.strictEqual(none.headers["www-authenticate"], `Bearer realm="mcp"`)
    assert.deepStrictEqual(JSON.parse(none.body).error.data, { reason: "no-credentials", error: "invalid_request" })

    const inUrl = await get(served.port, `/mcp/${Redacted.value(credential.token)}`, { authorization })
    assert.strictEqual(inUrl.status, 400)
    assert.strictEqual(JSON.parse(inUrl.body).error.data.reason, "target-token")

    // The default hosts are the loopback names at the port the request came in on.
    const otherPort = await get(served.port, "/mcp", { authorization, host: `localhost:${served.port + 1}` })
    assert.strictEqual(otherPort.status, 403)
    const evilOrigin = await get(served.port, "/mcp", { authorization, origin: "http://evil.example" })
    assert.strictEqual(evilOrigin.status, 403)
    const loudOrigin = await get(served.port, "/mcp", { authorization, origin: `HTTP://LOCALHOST:${served.port}` })
    assert.strictEqual(loudOrigin.status, 200)

    await registry.revoke(credential.credentialId)
    const revoked = await get(served.port, "/mcp", { authorization })
    assert.strictEqual(revoked.status, 401)
    assert.strictEqual(
      revoked.headers["www-authenticate"],
      `Bearer realm="mcp", error="invalid_token", error_description="the bearer token was revoked"`
    )
  })

  it("two Host headers and an absolute-form target for another host: the guard's 400 and 403 (raw sockets)", async () => {
    const credential = await registry.issue({ threadId: "thread-3", providerInstanceId: "codex" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const host = `127.0.0.1:${served.port}`
    const connections = pool(served.port, 1)
    try {
      const [twice, absolute] = await connections.run([
        { method: "GET", path: "/mcp", headers: [["Host", host], ["Host", "evil.example"], ["Authorization", authorization]] },
        { method: "GET", path: "http://evil.example/mcp", headers: [["Host", host], ["Authorization", authorization]] }
      ])
      assert.strictEqual(twice!.status, 400)
      assert.strictEqual(JSON.parse(twice!.body).error.data.reason, "duplicate-host")
      assert.strictEqual(absolute!.status, 403)
      assert.strictEqual(JSON.parse(absolute!.body).error.data.reason, "host")
    } finally {
      connections.close()
    }
  })

  it("takes an empty chunked body for no body, as it takes Content-Length: 0", async () => {
    const credential = await registry.issue({ threadId: "thread-8", providerInstanceId: "codex" })
    const authorization = Redacted.value(credential.authorizationHeader)
    const framings: ReadonlyArray<RawHeaders> = [{ "content-length": "0" }, { "content-length": "00" }, { "transfer-encoding": "chunked" }]
    for (const framing of framings) {
      const response = await Effect.runPromise(rawRequest({
        port: served.port,
        path: "/mcp",
        method: "DELETE",
        headers: { host: `127.0.0.1:${served.port}`, authorization, ...framing }
      }))
      assert.strictEqual(response.status, 200, `${JSON.stringify(framing)}: ${response.body}`)
      assert.strictEqual(JSON.parse(response.body).caller.threadId, "thread-8")
    }
  })
})

describe("nodeGuard", () => {
  it("sends byte for byte the refusals McpBearerAuth sends", async () => {
    const registry = await createRegistry()
    const options = { realm: "parity", allowedHosts: ["parity.test:1"] }
    const guard = nodeGuard(registry, options)
    const node = await listen((req, res) => guard(req, res, () => whoami(req, res)))
    const Routes = HttpRouter.add("*", "/mcp", Effect.succeed(HttpServerResponse.text("ok")))
    try {
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(
          McpHttpServer.layerGuarded(Routes, options).pipe(Layer.provideMerge(McpSessionRegistry.layer()))
        )
        const bound = Context.get(context, HttpServer.HttpServer)
        const port = bound.address._tag === "UnixPathAddress" ? 0 : bound.address.port
        const cases: ReadonlyArray<Record<string, string | ReadonlyArray<string>>> = [
          { host: "parity.test:1" },
          { host: "parity.test:1", authorization: "Basic x" },
          { host: "parity.test:1", authorization: `Bearer ${BearerToken.mint()}` },
          { host: "parity.test:1", authorization: "Bearer short" },
          { host: "parity.test:1", authorization: ["Bearer a", "Bearer b"] },
          { host: "evil.example" },
          { host: "parity.test:1", origin: "http://evil.example" }
        ]
        for (const path of ["/mcp", `/mcp?access_token=x`, `/mcp?q=${BearerToken.mint()}`]) {
          for (const headers of cases) {
            const fromEffect = yield* rawRequest({ port, path, headers })
            const fromNode = yield* rawRequest({ port: node.port, path, headers })
            const what = `${path} ${JSON.stringify(headers)}`
            assert.isAtLeast(fromEffect.status, 400, what)
            assert.strictEqual(fromNode.status, fromEffect.status, what)
            assert.strictEqual(fromNode.body, fromEffect.body, what)
            for (const name of ["www-authenticate", "content-type", "cache-control", "retry-after"]) {
              assert.strictEqual(fromNode.headers[name], fromEffect.headers[name], `${name} for ${what}`)
            }
          }
        }
      })))
    } finally {
      await node.close()
      await registry.close()
    }
  })

  it("keeps the call in flight until the response closes, also when the client goes away", async () => {
    const inner = await createRegistry()
    const events: Array<string> = []
    let onEnd: () => void = () => {}
    const counting: GuardRegistry = {
      lookup: (token) => inner.lookup(token),
      beginCall: (credentialId) => {
        events.push(`begin ${credentialId}`)
        return () => {
          events.push(`end ${credentialId}`)
          onEnd()
        }
      }
    }
    const guard = nodeGuard(counting)
    let release: () => void = () => {}
    const served = await listen((req, res) =>
      guard(req, res, () => {
        events.push("handler")
        if (req.url === "/slow") {
          res.writeHead(200)
          res.write("partial")
          release = () => res.end()
          return
        }
        res.end("done")
      })
    )
    try {
      const credential = await inner.issue({ threadId: "thread-4", providerInstanceId: "codex" })
      const id = credential.credentialId
      const authorization = Redacted.value(credential.authorizationHeader)
      await get(served.port, "/fast", { authorization })
      assert.deepStrictEqual(events, [`begin ${id}`, "handler", `end ${id}`])

      events.length = 0
      const request = Http.request({
        host: "127.0.0.1",
        port: served.port,
        path: "/slow",
        agent: false,
        headers: { host: `127.0.0.1:${served.port}`, authorization }
      })
      const firstChunk = new Promise<void>((resolve) => request.on("response", (response) => response.once("data", () => resolve())))
      request.on("error", () => {})
      request.end()
      await firstChunk
      assert.deepStrictEqual(events, [`begin ${id}`, "handler"])
      // The client hangs up mid-response: the call ends with the connection.
      const ended = new Promise<void>((resolve) => (onEnd = resolve))
      request.destroy()
      await ended
      assert.deepStrictEqual(events, [`begin ${id}`, "handler", `end ${id}`])
      release()

      // Refused requests begin nothing.
      events.length = 0
      await get(served.port, "/fast")
      assert.deepStrictEqual(events, [])
    } finally {
      await served.close()
      await inner.close()
    }
  })

  it("ends the call of a client that went away while its lookup was pending (a remote store's round trip)", async () => {
    const inner = await createRegistry()
    const events: Array<string> = []
    let onEnd: () => void = () => {}
    let answer: () => void = () => {}
    let asked: () => void = () => {}
    const lookingUp = new Promise<void>((resolve) => (asked = resolve))
    // A store whose answer comes only once the test says so, as Redis's does
    // after a round trip.
    const slow: GuardRegistry = {
      lookup: () => {
        throw new Error("lookupCall is there: lookup must not be called")
      },
      beginCall: () => {
        throw new Error("lookupCall is there: beginCall must not be called")
      },
      lookupCall: (token) =>
        new Promise((resolve) => {
          answer = () => {
            const found = inner.lookupCall(token)
            if (isPromise(found) || "_tag" in found) return resolve(found)
            events.push("begin")
            resolve({
              scope: found.scope,
              end: () => {
                found.end()
                events.push("end")
                onEnd()
              }
            })
          }
          asked()
        })
    }
    const guard = nodeGuard(slow)
    let closed: () => void = () => {}
    const gone = new Promise<void>((resolve) => (closed = resolve))
    const served = await listen((req, res) => {
      res.once("close", closed)
      guard(req, res, () => {
        events.push("handler")
        res.end("done")
      })
    })
    try {
      const credential = await inner.issue({ threadId: "thread-7", providerInstanceId: "codex" })
      const request = Http.request({
        host: "127.0.0.1",
        port: served.port,
        path: "/mcp",
        agent: false,
        headers: { host: `127.0.0.1:${served.port}`, authorization: Redacted.value(credential.authorizationHeader) }
      })
      request.on("error", () => {})
      request.end()
      // The client hangs up while the store is still answering.
      await lookingUp
      request.destroy()
      await gone
      const ended = new Promise<void>((resolve) => (onEnd = resolve))
      answer()
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 500))])
      // The call began and ended: nothing is left in flight to keep the credential from going idle.
      assert.deepStrictEqual(events, ["begin", "end", "handler"])
    } finally {
      await served.close()
      await inner.close()
    }
  })

  it("finds the credential once through lookupCall where the registry has it, and ends a refused call at once", async () => {
    const inner = await createRegistry()
    const events: Array<string> = []
    let onEnd: () => void = () => {}
    const tracking: GuardRegistry = {
      lookup: () => {
        throw new Error("lookupCall is there: lookup must not be called")
      },
      beginCall: () => {
        throw new Error("lookupCall is there: beginCall must not be called")
      },
      lookupCall: (token) => {
        const found = inner.lookupCall(token)
        if (isPromise(found) || "_tag" in found) return found
        events.push(`begin ${found.scope.threadId}`)
        return {
          scope: found.scope,
          end: () => {
            found.end()
            events.push(`end ${found.scope.threadId}`)
            onEnd()
          }
        }
      }
    }
    const plain = nodeGuard(tracking)
    const admin = nodeGuard(tracking, { requiredCapability: "admin" })
    const served = await listen((req, res) => (req.url === "/admin" ? admin : plain)(req, res, () => whoami(req, res)))
    try {
      const credential = await inner.issue({ threadId: "thread-6", providerInstanceId: "codex" })
      const authorization = Redacted.value(credential.authorizationHeader)
      const ended = new Promise<void>((resolve) => (onEnd = resolve))
      const ok = await get(served.port, "/mcp", { authorization })
      await ended
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(JSON.parse(ok.body).caller.threadId, "thread-6")
      assert.deepStrictEqual(events, ["begin thread-6", "end thread-6"])
      events.length = 0
      const refused = await get(served.port, "/admin", { authorization })
      assert.strictEqual(refused.status, 403)
      assert.deepStrictEqual(events, ["begin thread-6", "end thread-6"])
      events.length = 0
      await inner.revoke(credential.credentialId)
      assert.strictEqual((await get(served.port, "/mcp", { authorization })).status, 401)
      assert.deepStrictEqual(events, [])
    } finally {
      await served.close()
      await inner.close()
    }
  })

  it("answers a store that cannot answer with 503 and Retry-After, and a lookup that throws with 401", async () => {
    const errors: Array<unknown> = []
    const token = BearerToken.mint()
    const down: GuardRegistry = {
      lookup: () => Promise.resolve(new StoreUnavailable({ reason: "timeout", operation: "resolve" })),
      beginCall: () => () => {}
    }
    const broken: GuardRegistry = {
      lookup: () => {
        throw new Error("registry gone")
      },
      beginCall: () => () => {}
    }
    const rejecting: GuardRegistry = { lookup: () => Promise.reject(new Error("gone too")), beginCall: () => () => {} }
    const servers = await Promise.all(
      [down, broken, rejecting].map((registry) =>
        listen((req, res) => nodeGuard(registry, { onError: (error) => void errors.push(error) })(req, res, () => whoami(req, res)))
      )
    )
    try {
      const [unavailable, thrown, rejected] = await Promise.all(
        servers.map((served) => get(served.port, "/mcp", { authorization: `Bearer ${token}` }))
      )
      assert.strictEqual(unavailable!.status, 503)
      assert.strictEqual(unavailable!.headers["retry-after"], "1")
      assert.isUndefined(unavailable!.headers["www-authenticate"])
      assert.deepStrictEqual(JSON.parse(unavailable!.body).error.data, {
        reason: "store-unavailable",
        error: "temporarily_unavailable"
      })
      for (const response of [thrown!, rejected!]) {
        assert.strictEqual(response.status, 401)
        assert.strictEqual(JSON.parse(response.body).error.data.reason, "unverifiable")
        assert.notInclude(response.body, token)
      }
      assert.strictEqual(errors.length, 2)
      assert.notInclude(String(errors), token)
    } finally {
      await Promise.all(servers.map((served) => served.close()))
    }
  })

  it("a reporter that throws changes nothing: the lookup's failure is still the 401, and nothing escapes the guard", async () => {
    const token = BearerToken.mint()
    const escaped: Array<unknown> = []
    const onRejection = (error: unknown) => void escaped.push(error)
    process.on("unhandledRejection", onRejection)
    const failing = [
      { lookup: () => Promise.reject(new Error("gone")), beginCall: () => () => {} },
      {
        lookup: () => {
          throw new Error("gone")
        },
        beginCall: () => () => {}
      }
    ] satisfies ReadonlyArray<GuardRegistry>
    const servers = await Promise.all(failing.map((registry) => {
      const guard = nodeGuard(registry, {
        onError: () => {
          throw new Error("the reporter failed")
        }
      })
      return listen((req, res) => {
        try {
          guard(req, res, () => whoami(req, res))
        } catch (error) {
          escaped.push(error)
        }
      })
    }))
    try {
      for (const served of servers) {
        const response = await get(served.port, "/mcp", { authorization: `Bearer ${token}` })
        assert.strictEqual(response.status, 401)
        assert.strictEqual(JSON.parse(response.body).error.data.reason, "unverifiable")
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.deepStrictEqual(escaped, [])
    } finally {
      process.off("unhandledRejection", onRejection)
      await Promise.all(servers.map((served) => served.close()))
    }
  })

  it("mounted in Express: reads the target as sent (originalUrl), and works over an Effect registry", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const service = Context.get(yield* Layer.build(McpSessionRegistry.layer()), McpSessionRegistry.McpSessionRegistry)
      const credential = yield* service.issue({ threadId: "thread-5", providerInstanceId: "gemini" })
      const token = Redacted.value(credential.token)
      const app = express()
      app.use("/mcp", nodeGuard(fromService(service)))
      app.get("/mcp", (req, res) => void res.json({ threadId: caller((req as GuardedRequest).auth)?.threadId }))
      app.get("/mcp/*rest", (_req, res) => void res.json({ reached: true }))
      const listener = app.listen(0, "127.0.0.1")
      yield* Effect.promise(() => new Promise((resolve) => listener.once("listening", resolve)))
      yield* Effect.addFinalizer(() => Effect.sync(() => listener.close()))
      const port = (listener.address() as AddressInfo).port
      const authorization = `Bearer ${token}`
      const ok = yield* Effect.promise(() => get(port, "/mcp", { authorization }))
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(JSON.parse(ok.body).threadId, "thread-5")
      for (const path of [`/mcp/${token}`, `/mcp?access_token=${token}`, `/mcp?x=${token}`]) {
        const refused = yield* Effect.promise(() => get(port, path, { authorization }))
        assert.strictEqual(refused.status, 400, path)
        assert.notInclude(refused.body, token)
      }
    })))
  })

  it("throws GuardConfigError for options that cannot work", async () => {
    const registry = await createRegistry()
    try {
      assert.throws(() => nodeGuard(registry, { realm: "a\r\nb" }), /realm/)
    } finally {
      await registry.close()
    }
  })
})
