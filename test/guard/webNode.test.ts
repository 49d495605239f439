/**
 * `webGuard` on `@hono/node-server` given the server's Node bindings
 * (`c.env`): the same verdicts as from the Web request alone, read from
 * Node's raw headers, over real sockets on 127.0.0.1.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { IncomingMessage } from "node:http"
import * as Net from "node:net"
import { type GuardRegistry, type NodeBindings, webGuard } from "../../src/guard/index.ts"
import { BearerToken } from "../../src/index.ts"
import { createRegistry, type Registry, reveal } from "../../src/promise/index.ts"
import { listenHono, webHeadersBuilt } from "../support/http.ts"

/**
 * Sends `head` (and `body`, if any) as written; resolves with the status and
 * the refusal's `data.reason` as soon as a whole answer is in.
 */
const raw = (port: number, head: string, body?: string) =>
  new Promise<{ readonly status: number; readonly reason: string | undefined }>((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1")
    let out = ""
    socket.on("data", (d) => {
      out += d.toString()
      const at = out.indexOf("\r\n\r\n")
      if (at === -1) return
      const length = /content-length: (\d+)/i.exec(out.slice(0, at))
      if (length === null || out.length - at - 4 < Number(length[1])) return
      const text = out.slice(at + 4)
      socket.destroy()
      resolve({ status: Number(out.slice(9, 12)), reason: text.startsWith("{") ? JSON.parse(text).error?.data?.reason : undefined })
    })
    // A streamed (chunked) answer ends with the connection (`Connection: close`).
    socket.on("end", () => resolve({ status: Number(out.slice(9, 12)), reason: undefined }))
    socket.on("error", reject)
    socket.on("connect", () => socket.write(head + (body ?? "")))
  })

describe("webGuard with @hono/node-server's bindings", () => {
  let registry: Registry
  let server: Awaited<ReturnType<typeof listenHono>>
  let port: number
  let token: string
  // Whether the guard was given the bindings and, if so, whether it still had
  // not built the Web request's headers (it read Node's raw ones instead).
  const seen: Array<"with, raw" | "with, web" | "without"> = []
  beforeAll(async () => {
    registry = await createRegistry()
    token = reveal((await registry.issue({ threadId: "t", providerInstanceId: "codex" })).token)
    const guard = webGuard(registry)
    server = await listenHono(async (request, env) => {
      // Asked of the Node request: asking the Web one would build its headers.
      const bindings = (env.incoming as IncomingMessage).headers["x-bindings"] === "no" ? undefined : env
      if (new URL(request.url).pathname === "/handle") {
        seen.push(bindings === undefined ? "without" : "with, raw")
        return guard.handle(request, () => new Response("ran"), bindings)
      }
      const outcome = await guard.check(request, bindings)
      seen.push(bindings === undefined ? "without" : webHeadersBuilt(request) ? "with, web" : "with, raw")
      return outcome instanceof Response ? outcome : new Response("ok")
    })
    port = server.port
  })
  afterAll(async () => {
    server.close()
    await registry.close()
  })

  it("reaches the same verdict as from the Web request alone, for every check", async () => {
    const host = `127.0.0.1:${port}`
    const auth = `Authorization: Bearer ${token}\r\n`
    const cases: ReadonlyArray<readonly [string, string, number, string | undefined]> = [
      ["a live token", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\n${auth}`, 200, undefined],
      ["no credentials", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\n`, 401, "no-credentials"],
      ["a wrong scheme", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Basic eA==\r\n`, 401, "scheme"],
      ["an unknown token", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${BearerToken.mint()}\r\n`, 401, "unknown"],
      ["a Host outside the list", `GET /mcp HTTP/1.1\r\nHost: evil.example\r\n${auth}`, 403, "host"],
      ["an absolute-form target naming another host", `GET http://evil.example/mcp HTTP/1.1\r\nHost: ${host}\r\n${auth}`, 403, "host"],
      ["an Origin outside the list", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://evil.example\r\n${auth}`, 403, "origin"],
      ["two Authorization headers", `GET /mcp HTTP/1.1\r\nHost: ${host}\r\n${auth}${auth}`, 400, "duplicate-authorization"],
      ["a token in the query", `GET /mcp?access_token=x HTTP/1.1\r\nHost: ${host}\r\n${auth}`, 400, "query-token"],
      ["a token in the path", `GET /mcp/${token} HTTP/1.1\r\nHost: ${host}\r\n${auth}`, 400, "target-token"]
    ]
    for (const [name, head, status, reason] of cases) {
      for (const bindings of ["yes", "no"]) {
        seen.length = 0
        const answer = await raw(port, `${head}X-Bindings: ${bindings}\r\nConnection: close\r\n\r\n`)
        assert.deepStrictEqual(answer, { status, reason }, `${name}, bindings ${bindings}`)
        assert.deepStrictEqual(seen, [bindings === "yes" ? "with, raw" : "without"], name)
      }
    }
  })

  it("judges the Web request itself when the bindings are not its own, or hold no Node request", async () => {
    const guard = webGuard(registry, { port: 8787 })
    const request = new Request("http://127.0.0.1:8787/mcp", { headers: { authorization: `Bearer ${token}` } })
    const foreign = new Request("http://evil.example/mcp", { headers: { authorization: `Bearer ${token}` } })
    const wire = (host: string, httpVersionMajor = 1) => ({
      incoming: { url: "/mcp", httpVersionMajor, rawHeaders: ["Host", host, "Authorization", `Bearer ${token}`] }
    })
    // Not the Node request this Request was built from: ignored either way.
    assert.notInstanceOf(await guard.check(request, wire("evil.example")), Response)
    const refused = await guard.check(foreign, wire("127.0.0.1:8787"))
    assert.instanceOf(refused, Response)
    assert.strictEqual((refused as Response).status, 403)
    // Bindings of another runtime (Bun's server, Deno's info) hold no Node
    // request; an HTTP/2 one names its host :authority.
    for (const other of [{}, { incoming: {} }, { incoming: { rawHeaders: "x" } }, wire("evil.example", 2)] as Array<NodeBindings>) {
      assert.notInstanceOf(await guard.check(request, other), Response)
    }
  })

  it("handle: refuses on the headers before reading the body", async () => {
    // The body is announced and never sent: only a refusal that does not
    // wait for it can answer.
    for (const bindings of ["yes", "no"]) {
      const answer = await raw(
        port,
        `POST /handle HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 100\r\nX-Bindings: ${bindings}\r\nConnection: close\r\n\r\n`
      )
      assert.deepStrictEqual(answer, { status: 403, reason: "host" }, `bindings ${bindings}`)
    }
    const ran = await raw(
      port,
      `POST /handle HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
        `Content-Length: 2\r\nConnection: close\r\n\r\n`,
      "{}"
    )
    assert.deepStrictEqual(ran, { status: 200, reason: undefined })
  })

  it("handle: with the bindings, a call whose Node response closed before the handler ran still ends", async () => {
    // The client leaves before the guard installs its listener (while the
    // body arrives, say): the response's close has fired already.
    const events: Array<string> = []
    const counting: GuardRegistry = {
      lookup: (t) => registry.lookup(t),
      beginCall: () => {
        events.push("begin")
        return () => events.push("end")
      }
    }
    const guard = webGuard(counting)
    let handled: (outcome: string) => void = () => {}
    const done = new Promise<string>((r) => (handled = r))
    let arrived: () => void = () => {}
    const inServer = new Promise<void>((r) => (arrived = r))
    const late = await listenHono(async (request, env) => {
      const outgoing = env.outgoing as unknown as { closed: boolean; once: (e: "close", f: () => void) => void }
      arrived()
      if (!outgoing.closed) await new Promise<void>((r) => outgoing.once("close", r))
      const response = await guard.handle(request, () => new Response("ran"), env)
      handled(`${response.status} ${events.join(",")}`)
      return response
    })
    try {
      const latePort = late.port
      const socket = Net.connect(latePort, "127.0.0.1")
      socket.on("error", () => {})
      socket.on("connect", () =>
        socket.write(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${latePort}\r\nAuthorization: Bearer ${token}\r\n\r\n`))
      await inServer
      socket.destroy()
      assert.strictEqual(await done, "200 begin,end")
    } finally {
      late.close()
    }
  })

  it("handle: with the bindings, the call stays in flight until the Node response closes", async () => {
    const events: Array<string> = []
    let ended: () => void = () => {}
    const callEnded = new Promise<void>((r) => (ended = r))
    const counting: GuardRegistry = {
      lookup: (t) => registry.lookup(t),
      beginCall: () => {
        events.push("begin")
        return () => {
          events.push("end")
          ended()
        }
      }
    }
    const guard = webGuard(counting)
    let release: () => void = () => {}
    const released = new Promise<void>((r) => (release = r))
    let started: () => void = () => {}
    const streaming = new Promise<void>((r) => (started = r))
    const streamed = await listenHono((request, env) =>
      guard.handle(request, () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async start(controller) {
              controller.enqueue(new TextEncoder().encode("one "))
              started()
              await released
              controller.enqueue(new TextEncoder().encode("two"))
              controller.close()
            }
          })
        ), env))
    try {
      const streamedPort = streamed.port
      const answer = raw(
        streamedPort,
        `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${streamedPort}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`
      )
      await streaming
      // Mid-stream: begun, not ended.
      assert.deepStrictEqual(events, ["begin"])
      release()
      assert.strictEqual((await answer).status, 200)
      await callEnded
      assert.deepStrictEqual(events, ["begin", "end"])
    } finally {
      streamed.close()
    }
  })
})
