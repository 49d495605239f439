/**
 * Measurement 5: what the HTTP guards cost. Each guard is measured on its own
 * stack against the bare route of that same stack:
 *
 * - `McpBearerAuth` on Effect's HTTP server (`/bare` and `/guarded` behind
 *   `McpBearerAuth.layer()`);
 * - `nodeGuard` on a plain `node:http` server;
 * - `webGuard` on `@hono/node-server`'s request listener (the Web-standard
 *   `Request`/`Response` stack Hono runs on in Node), given the listener's
 *   bindings as the docs say (`guard.check(request, env)`).
 *
 * The registry holds `live` credentials; every request of every run carries
 * the next of them in its `Authorization` header, so bare and guarded differ
 * only in the guard. Runs alternate, bare and guarded in turn, and the median
 * of each is compared. The server's CPU time per request is compared too: on
 * two cores the load generator can be what limits the rate, and then only CPU
 * shows the cost.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { getRequestListener } from "@hono/node-server"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { fromService, nodeGuard, webGuard } from "../src/guard/index.ts"
import * as McpBearerAuth from "../src/McpBearerAuth.ts"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import { median } from "./harness.ts"
import { load, loadGenerator } from "./loadGenerator.ts"
import { optionsFor, populate } from "./population.ts"

/** One guard against the bare route of its stack. */
export interface GuardPair {
  /** `McpBearerAuth`, `nodeGuard` or `webGuard`. */
  readonly guard: string
  /** The server it ran on. */
  readonly stack: string
  readonly withoutGuard: number
  readonly withGuard: number
  /** `withGuard / withoutGuard`. */
  readonly ratio: number
  /** `(1 - ratio) * 100`. */
  readonly costPercent: number
  readonly samples: { readonly withoutGuard: ReadonlyArray<number>; readonly withGuard: ReadonlyArray<number> }
  /**
   * The server process's CPU time per request (median of the runs), bare and
   * guarded: the guard's cost even when the load generator, not the server,
   * limits the request rate.
   */
  readonly cpuMicrosPerRequest: { readonly withoutGuard: number; readonly withGuard: number }
  /** `(guarded / bare - 1) * 100` of the CPU time per request. */
  readonly cpuCostPercent: number
}

/**
 * What measurement 5 found. The top-level figures are `McpBearerAuth`'s (the
 * first of `guards`); `guards` has every guard.
 */
export interface GuardResult extends GuardPair {
  readonly liveCredentials: number
  readonly connections: number
  readonly secondsPerRun: number
  readonly guards: ReadonlyArray<GuardPair>
}

const ok = HttpServerResponse.text("ok")

const Routes = Layer.mergeAll(
  HttpRouter.add("GET", "/bare", Effect.succeed(ok)),
  HttpRouter.add("GET", "/guarded", Effect.succeed(ok)).pipe(Layer.provide(McpBearerAuth.layer()))
)

const answer = (res: ServerResponse) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("ok")
}

/** A node:http server on 127.0.0.1, a free port, for the scope. */
const listening = (listener: (req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly base: string; readonly close: () => void }>((resume) => {
      const server = createServer(listener)
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          close: () => {
            server.closeAllConnections()
            server.close()
          }
        })))
    }),
    (server) => Effect.sync(server.close)
  )

/** Serves each stack's two routes, then loads them in alternation. */
export const measure = (options: {
  readonly live: number
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  /** Requests per run instead of `seconds` (smoke runs: no warm-up either). */
  readonly amount?: number | undefined
}): Effect.Effect<GuardResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const stack = HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(McpSessionRegistry.layer(optionsFor(options.live)))
    )
    const context = yield* Layer.build(stack)
    const server = Context.get(context, HttpServer.HttpServer)
    const registry = Context.get(context, McpSessionRegistry.McpSessionRegistry)
    if (server.address._tag === "UnixPathAddress") throw new Error("guard: expected a TCP address")
    const tokens = yield* populate(registry, options.live)
    const child = yield* loadGenerator
    const guardRegistry = fromService(registry)

    const node = nodeGuard(guardRegistry)
    const nodeServer = yield* listening((req, res) => {
      if (req.url === "/guarded") node(req, res, () => answer(res))
      else answer(res)
    })

    const web = webGuard(guardRegistry)
    const okResponse = () => new Response("ok", { headers: { "content-type": "text/plain" } })
    // The guard is given the server's bindings, as docs/guards.md says to on
    // @hono/node-server: it then reads Node's raw headers, not the Web ones.
    const webServer = yield* listening(getRequestListener((request, env) => {
      if (!request.url.endsWith("/guarded")) return okResponse()
      const caller = web.check(request, env)
      return caller instanceof Response ? caller : okResponse()
    }, { overrideGlobalObjects: false }))

    const pair = Effect.fnUntraced(function*(guard: string, stackName: string, base: string) {
      const cpu = { "/bare": [] as Array<number>, "/guarded": [] as Array<number> }
      const run = Effect.fnUntraced(function*(path: "/bare" | "/guarded", seconds: number) {
        const before = process.cpuUsage()
        const result = yield* load(child, {
          url: base + path,
          tokens,
          connections: options.connections,
          seconds,
          amount: options.amount
        })
        if (result.non2xx > 0 || result.errors > 0 || result.requests === 0) {
          throw new Error(`guard: ${guard} ${path} answered ${result.non2xx} non-2xx and ${result.errors} errors`)
        }
        const used = process.cpuUsage(before)
        cpu[path].push((used.user + used.system) / result.requests)
        return result.requestsPerSecond
      })
      if (options.amount === undefined) {
        // Warm-up of both paths, untimed.
        yield* run("/bare", 1)
        yield* run("/guarded", 1)
      }
      cpu["/bare"].length = 0
      cpu["/guarded"].length = 0
      const bare: Array<number> = []
      const guarded: Array<number> = []
      // The order alternates, so neither side always runs second.
      for (let round = 0; round < options.rounds; round++) {
        if (round % 2 === 0) {
          bare.push(yield* run("/bare", options.seconds))
          guarded.push(yield* run("/guarded", options.seconds))
        } else {
          guarded.push(yield* run("/guarded", options.seconds))
          bare.push(yield* run("/bare", options.seconds))
        }
      }
      const withoutGuard = median(bare)
      const withGuard = median(guarded)
      return {
        guard,
        stack: stackName,
        withoutGuard,
        withGuard,
        ratio: withGuard / withoutGuard,
        costPercent: (1 - withGuard / withoutGuard) * 100,
        samples: { withoutGuard: bare, withGuard: guarded },
        cpuMicrosPerRequest: { withoutGuard: median(cpu["/bare"]), withGuard: median(cpu["/guarded"]) },
        cpuCostPercent: (median(cpu["/guarded"]) / median(cpu["/bare"]) - 1) * 100
      } satisfies GuardPair
    })

    const guards = [
      yield* pair("McpBearerAuth", "Effect HttpRouter on node:http", `http://127.0.0.1:${server.address.port}`),
      yield* pair("nodeGuard", "node:http", nodeServer.base),
      yield* pair("webGuard", "@hono/node-server request listener", webServer.base)
    ]
    return {
      ...guards[0]!,
      liveCredentials: options.live,
      connections: options.connections,
      secondsPerRun: options.seconds,
      guards
    }
  }))
