/**
 * `webGuard` learns where `@hono/node-server` keeps the Node request and the
 * Web headers from the first request of a server package, and from then on
 * lists no request's Symbols. A first request whose headers a middleware had
 * edited is neither admitted on the Node request's token nor spoils what
 * later requests are judged by; requests of odd prototypes never make the
 * learning throw out of the guard. (Its own file: what the guard learns lasts
 * for the module.)
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { webGuard } from "../../src/guard/index.ts"
import { createRegistry, type Registry, reveal } from "../../src/promise/index.ts"
import { listenHono, webHeadersBuilt } from "../support/http.ts"

// Calls `f`, counting the `Object.getOwnPropertySymbols` calls made meanwhile.
const countingSymbolListings = async <A>(f: () => Promise<A>): Promise<readonly [A, number]> => {
  const list = Object.getOwnPropertySymbols
  let calls = 0
  Object.getOwnPropertySymbols = (o: object) => {
    calls++
    return list(o)
  }
  try {
    return [await f(), calls]
  } finally {
    Object.getOwnPropertySymbols = list
  }
}

describe("webGuard: what it learns from @hono/node-server", () => {
  let registry: Registry
  let server: Awaited<ReturnType<typeof listenHono>>
  let token: string
  // Symbol listings of the guard, per request.
  const listings: Array<number> = []
  beforeAll(async () => {
    registry = await createRegistry()
    token = reveal((await registry.issue({ threadId: "t", providerInstanceId: "codex" })).token)
    const guard = webGuard(registry)
    server = await listenHono(async (request, env) => {
      const path = new URL(request.url).pathname
      if (path === "/edited") request.headers.delete("authorization")
      // What Hono's cors() or any `c.req.header()` does before the guard.
      if (path === "/read") request.headers.get("accept")
      const [outcome, listed] = await countingSymbolListings(async () => guard.check(request, env))
      listings.push(listed)
      return outcome instanceof Response ? outcome : new Response(webHeadersBuilt(request) ? "web" : "raw")
    })
  })
  afterAll(async () => {
    server.close()
    await registry.close()
  })

  it("judges an edited first request by itself, reads clean ones raw, and lists no Symbols once it learnt", async () => {
    const send = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { authorization: `Bearer ${token}` } })
      const text = await response.text()
      return response.status === 200 ? `200 ${text}` : String(response.status)
    }
    const answers = []
    for (const path of ["/edited", "/own", "/read", "/edited", "/own", "/read"]) answers.push(await send(path))
    assert.deepStrictEqual(answers, ["401", "200 raw", "200 web", "401", "200 raw", "200 web"])
    // The first request teaches; none after it is listed.
    assert.deepStrictEqual(listings.slice(1), [0, 0, 0, 0, 0])
  })

  it("never throws out of check on requests of odd prototypes", async () => {
    const key = Symbol("incoming")
    const request = (prototype: object | null) => {
      const incoming = { httpVersionMajor: 1, url: "/mcp", rawHeaders: ["Host", "127.0.0.1", "Authorization", `Bearer ${token}`] }
      const built = Object.create(prototype) as Record<symbol, unknown>
      Object.defineProperty(built, key, { value: incoming, enumerable: true })
      return { built: built as unknown as Request, incoming }
    }
    const prototypes: Record<string, object | null> = {
      "no prototype": null,
      "a headers getter that throws": {
        get headers(): unknown {
          throw new Error("headers")
        }
      },
      "the Symbol read-only on the prototype": Object.freeze({ [key]: null }),
      "a getter that leaves a throwing accessor": {
        get headers(): unknown {
          Object.defineProperty(this, Symbol("headers"), {
            get() {
              throw new Error("accessor")
            }
          })
          return 1
        }
      }
    }
    const guard = webGuard(registry)
    for (const [name, prototype] of Object.entries(prototypes)) {
      const { built, incoming } = request(prototype)
      // The Node request is the one the bindings name, so it is judged: admitted.
      const outcome = await guard.check(built, { incoming })
      assert.notInstanceOf(outcome, Response, name)
    }
  })
})
