/**
 * `webGuard` given `@hono/node-server`'s bindings judges the Node request
 * behind them only for the `Request` built from it: any other Request handed
 * over with them (a sub-request given the outer request's `c.env`, a request
 * a middleware rebuilt or edited) is judged by itself, never admitted on the
 * other request's token and Host.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { webGuard } from "../../src/guard/index.ts"
import { createRegistry, type Registry, reveal } from "../../src/promise/index.ts"
import { listenHono } from "../support/http.ts"

describe("webGuard: bindings that are not the Request's own", () => {
  it("refuses a Request without credentials even when bindings of another request carry a valid token", async () => {
    const registry = await createRegistry()
    try {
      const token = reveal((await registry.issue({ threadId: "t", providerInstanceId: "p" })).token)
      const guard = webGuard(registry, { port: 8080 })
      const outer = {
        incoming: { httpVersionMajor: 1, url: "/batch", rawHeaders: ["Host", "127.0.0.1:8080", "Authorization", `Bearer ${token}`] }
      }
      // The Request actually served: no Authorization, a foreign Host.
      const inner = new Request("http://evil.example/mcp", { method: "POST", headers: { host: "evil.example" }, body: "{}" })
      const outcome = await guard.check(inner, outer)
      assert.instanceOf(outcome, Response, "admitted a Request that carries no token, on the bindings' token")
    } finally {
      await registry.close()
    }
  })

  describe("on a real @hono/node-server", () => {
    let registry: Registry
    let server: Awaited<ReturnType<typeof listenHono>>
    let port: number
    let token: string
    // What the server does with the request before the guard sees it, by path.
    const rewrites: Record<string, (request: Request) => Request> = {
      // The client's request itself: the baseline.
      "/own": (request) => request,
      // Rebuilt without the client's Authorization, same method and URL.
      "/rebuilt": (request) => {
        const headers = new Headers(request.headers)
        headers.delete("authorization")
        return new Request(request.url, { method: request.method, headers })
      },
      // The client's request, its Authorization removed in place.
      "/edited": (request) => {
        request.headers.delete("authorization")
        return request
      },
      // A sub-request to another host, no credentials of its own.
      "/sub": () => new Request("http://evil.example/mcp")
    }
    beforeAll(async () => {
      registry = await createRegistry()
      token = reveal((await registry.issue({ threadId: "t", providerInstanceId: "codex" })).token)
      const guard = webGuard(registry)
      server = await listenHono(async (request, env) => {
        const [path, mode] = new URL(request.url).pathname.split("/").slice(1)
        const served = rewrites[`/${path}`]!(request)
        if (mode === "handle") return guard.handle(served, () => new Response("ran"), env)
        const outcome = await guard.check(served, env)
        return outcome instanceof Response ? outcome : new Response("ok")
      })
      port = server.port
    })
    afterAll(async () => {
      server.close()
      await registry.close()
    })

    it("admits the client's own request, and judges any other Request by itself", async () => {
      for (const mode of ["check", "handle"]) {
        const answers: Record<string, number> = {}
        for (const path of Object.keys(rewrites)) {
          const response = await fetch(`http://127.0.0.1:${port}${path}/${mode}`, {
            headers: { authorization: `Bearer ${token}` }
          })
          await response.arrayBuffer()
          answers[path] = response.status
        }
        assert.deepStrictEqual(answers, { "/own": 200, "/rebuilt": 401, "/edited": 401, "/sub": 403 }, mode)
      }
    })
  })
})
