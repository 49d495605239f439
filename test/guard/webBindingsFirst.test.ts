/**
 * `webGuard` learns where `@hono/node-server` keeps the Node request and the
 * Web headers from the first clean request of a server package; a first
 * request whose headers a middleware had edited must neither be admitted on
 * the Node request's token nor spoil what later requests are judged by.
 * (Its own file: what the guard learns lasts for the module.)
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { webGuard } from "../../src/guard/index.ts"
import { createRegistry, type Registry, reveal } from "../../src/promise/index.ts"
import { listenHono } from "../support/http.ts"

describe("webGuard: the first request it sees from @hono/node-server", () => {
  let registry: Registry
  let server: Awaited<ReturnType<typeof listenHono>>
  let token: string
  beforeAll(async () => {
    registry = await createRegistry()
    token = reveal((await registry.issue({ threadId: "t", providerInstanceId: "codex" })).token)
    const guard = webGuard(registry)
    server = await listenHono(async (request, env) => {
      if (new URL(request.url).pathname === "/edited") request.headers.delete("authorization")
      const outcome = await guard.check(request, env)
      const built = Object.getOwnPropertySymbols(request).some((s) =>
        (request as unknown as Record<symbol, unknown>)[s] instanceof Headers
      )
      return outcome instanceof Response ? outcome : new Response(built ? "web" : "raw")
    })
  })
  afterAll(async () => {
    server.close()
    await registry.close()
  })

  it("judges an edited first request by itself, then reads the raw headers of clean ones", async () => {
    const send = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { authorization: `Bearer ${token}` } })
      return `${response.status} ${response.status === 200 ? await response.text() : (await response.arrayBuffer(), "")}`.trim()
    }
    const answers = []
    for (const path of ["/edited", "/own", "/edited", "/own", "/own"]) answers.push(await send(path))
    assert.deepStrictEqual(answers, ["401", "200 raw", "401", "200 raw", "200 raw"])
  })
})
