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
 *
 * A third route of each stack is the bare one plus the registry lookup its
 * guard makes, called by hand on the token of the raw `Authorization` header,
 * with no guard around it: what of the guard's cost is the lookup (SHA-256
 * and the index, with the caches as the server's own work leaves them), and
 * what is the guard's own. A fourth is the bare one plus the floor's lookup
 * (`contenders.ts`: one SHA-256, one read of a plain `Map` and one
 * timestamp write, no registry): what no lookup of a digest can cost less
 * than, in the same place.
 *
 * Those routes' CPU times differ by a microsecond or two, about what the
 * machine drifts between runs. So on the `node:http` and Hono stacks a fifth
 * route times the two lookups themselves, in turn on successive requests of
 * one run: the registry's, as the `/lookup` route makes it, and the floor's,
 * each with the caches as the requests before it left them. Side by side in
 * one run, their ratio is what the resolve family's hot loops cannot show:
 * how the lookups compare where a server makes them.
 *
 * The server and the load generator run on CPUs of their own where the
 * bench may use two (`cpus.ts`).
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
import type { CallLookup, GuardRegistry } from "../src/guard/registry.ts"
import * as McpBearerAuth from "../src/McpBearerAuth.ts"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"
import * as Contenders from "./contenders.ts"
import { pinApart } from "./cpus.ts"
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
  /**
   * The server's CPU time per request (median) of the bare route plus the
   * registry lookup its guard makes, with no guard: `lookup - bare` of the
   * guard's `guarded - bare` is the lookup's own cost.
   */
  readonly lookupCpuMicrosPerRequest?: number | undefined
  /**
   * The same of the bare route plus the floor's lookup (one SHA-256, one
   * plain `Map` read and write): `floor - bare` is the least any digest lookup costs
   * in that place.
   */
  readonly floorCpuMicrosPerRequest?: number | undefined
  /**
   * The registry's lookup and the floor's, timed inside the handler in turn
   * on successive requests of one run (median of the runs, in nanoseconds);
   * `floor / registry` is the registry's speed against the floor's in place.
   * Absent on the Effect stack, whose routes are not plain functions.
   */
  readonly inPlace?: { readonly registryNanos: number; readonly floorNanos: number; readonly ratio: number } | undefined
}

/**
 * What measurement 5 found. The top-level figures are `McpBearerAuth`'s (the
 * first of `guards`); `guards` has every guard.
 */
export interface GuardResult extends GuardPair {
  readonly liveCredentials: number
  readonly connections: number
  readonly secondsPerRun: number
  /** Whether the server and the load generator ran on CPUs of their own. */
  readonly pinned?: boolean | undefined
  readonly guards: ReadonlyArray<GuardPair>
}

const ok = HttpServerResponse.text("ok")

/** The token of a raw header list's `Authorization: Bearer` header, as sent by the load generator. */
const tokenOf = (rawHeaders: ReadonlyArray<string>): string => {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 13 && rawHeaders[i]!.toLowerCase() === "authorization") return rawHeaders[i + 1]!.slice(7)
  }
  return ""
}

/** Whether the registry's synchronous `lookup` found a token live. */
const liveIn = (registry: GuardRegistry, token: string): boolean => !("_tag" in (registry.lookup(token) as object))

/** Whether the lookup a guard makes (`lookupCall`, its call ended at once, or `lookup`) found the token live. */
const lookedUp = (registry: GuardRegistry, rawHeaders: ReadonlyArray<string>, withCall: boolean): boolean => {
  const token = tokenOf(rawHeaders)
  if (!withCall) return liveIn(registry, token)
  const found = registry.lookupCall!(token) as CallLookup
  if ("_tag" in found) return false
  found.end()
  return true
}

/** The two lookups of the in-place route, timed in turn, one per request. */
const makeInPlace = (registry: GuardRegistry, floor: Contenders.PlainResolver) => {
  const nanos = [0, 0]
  const counts = [0, 0]
  let turn = 0
  return {
    /** Times the next lookup in turn; whether it found the token live. */
    found: (rawHeaders: ReadonlyArray<string>): boolean => {
      const token = tokenOf(rawHeaders)
      const which = turn
      turn ^= 1
      const start = performance.now()
      const live = which === 0 ? liveIn(registry, token) : floor.resolve(token) !== undefined
      nanos[which]! += (performance.now() - start) * 1e6
      counts[which]!++
      return live
    },
    /** The mean of each since the last call, in nanoseconds: `[registry, floor]`. */
    take: (): readonly [number, number] => {
      const means = [nanos[0]! / counts[0]!, nanos[1]! / counts[1]!] as const
      nanos.fill(0)
      counts.fill(0)
      return means
    }
  }
}

/** Whether the floor's lookup found the token of a raw header list. */
const floorFound = (floor: Contenders.PlainResolver, rawHeaders: ReadonlyArray<string>): boolean =>
  floor.resolve(tokenOf(rawHeaders)) !== undefined

/** The floor's lookup over a population's tokens, for the routes that need it. */
class Floor extends Context.Service<Floor, Contenders.PlainResolver>()("bench/guard/Floor") {}

const refused = HttpServerResponse.text("refused", { status: 401 })

// The lookup routes need the built registry and the floor, so they are layers of them.
const LookupRoutes = Layer.unwrap(Effect.gen(function*() {
  const registry = fromService(yield* McpSessionRegistry.McpSessionRegistry)
  const floor = yield* Floor
  return Layer.mergeAll(
    HttpRouter.add("GET", "/lookup", (request) =>
      Effect.succeed(lookedUp(registry, (request.source as IncomingMessage).rawHeaders, true) ? ok : refused)),
    HttpRouter.add("GET", "/floor", (request) =>
      Effect.succeed(floorFound(floor, (request.source as IncomingMessage).rawHeaders) ? ok : refused))
  )
}))

const Routes = Layer.mergeAll(
  HttpRouter.add("GET", "/bare", Effect.succeed(ok)),
  LookupRoutes,
  HttpRouter.add("GET", "/guarded", Effect.succeed(ok)).pipe(Layer.provide(McpBearerAuth.layer()))
)

const paths = ["/bare", "/guarded", "/lookup", "/floor"] as const
type Path = typeof paths[number]

const answer = (res: ServerResponse, status = 200) => {
  res.writeHead(status, { "content-type": "text/plain" })
  res.end(status === 200 ? "ok" : "refused")
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

/** Serves each stack's routes, loads the four of every stack in alternation, then the in-place one. */
export const measure = (options: {
  readonly live: number
  readonly connections: number
  readonly seconds: number
  readonly rounds: number
  /** Requests per run instead of `seconds` (smoke runs: no warm-up either). */
  readonly amount?: number | undefined
}): Effect.Effect<GuardResult, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    // The registry first: the floor's map is made of the tokens it issues.
    const registry = Context.get(
      yield* Layer.build(McpSessionRegistry.layer(optionsFor(options.live))),
      McpSessionRegistry.McpSessionRegistry
    )
    const tokens = yield* populate(registry, options.live)
    const floor = Contenders.floor(tokens)
    const stack = HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provide(Layer.succeed(McpSessionRegistry.McpSessionRegistry, registry)),
      Layer.provide(Layer.succeed(Floor, floor))
    )
    const server = Context.get(yield* Layer.build(stack), HttpServer.HttpServer)
    if (server.address._tag === "UnixPathAddress") throw new Error("guard: expected a TCP address")
    const child = yield* loadGenerator
    const pinned = yield* pinApart(child)
    const guardRegistry = fromService(registry)

    const node = nodeGuard(guardRegistry)
    const nodeInPlace = makeInPlace(guardRegistry, floor)
    const nodeServer = yield* listening((req, res) => {
      if (req.url === "/guarded") node(req, res, () => answer(res))
      else if (req.url === "/inplace") answer(res, nodeInPlace.found(req.rawHeaders) ? 200 : 401)
      else if (req.url === "/lookup") answer(res, lookedUp(guardRegistry, req.rawHeaders, true) ? 200 : 401)
      else if (req.url === "/floor") answer(res, floorFound(floor, req.rawHeaders) ? 200 : 401)
      else answer(res)
    })

    const web = webGuard(guardRegistry)
    const okResponse = () => new Response("ok", { headers: { "content-type": "text/plain" } })
    const webAnswer = (found: boolean) => (found ? okResponse() : new Response("refused", { status: 401 }))
    // The guard is given the server's bindings, as docs/guards.md says to on
    // @hono/node-server: it then reads Node's raw headers, not the Web ones.
    const webInPlace = makeInPlace(guardRegistry, floor)
    const webServer = yield* listening(getRequestListener((request, env) => {
      const url = request.url
      if (url.endsWith("/inplace")) return webAnswer(webInPlace.found(env.incoming.rawHeaders))
      // `/lookup` looks up as `check` does, beginning no call.
      if (url.endsWith("/lookup")) return webAnswer(lookedUp(guardRegistry, env.incoming.rawHeaders, false))
      if (url.endsWith("/floor")) return webAnswer(floorFound(floor, env.incoming.rawHeaders))
      if (!url.endsWith("/guarded")) return okResponse()
      const caller = web.check(request, env)
      return caller instanceof Response ? caller : okResponse()
    }, { overrideGlobalObjects: false }))

    const pair = Effect.fnUntraced(function*(
      guard: string,
      stackName: string,
      base: string,
      inPlace?: ReturnType<typeof makeInPlace>
    ) {
      const cpu: Record<Path, Array<number>> = { "/bare": [], "/guarded": [], "/lookup": [], "/floor": [] }
      const rate: Record<Path, Array<number>> = { "/bare": [], "/guarded": [], "/lookup": [], "/floor": [] }
      const run = Effect.fnUntraced(function*(path: Path | "/inplace", seconds: number) {
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
        if (path === "/inplace") return
        const used = process.cpuUsage(before)
        cpu[path].push((used.user + used.system) / result.requests)
        rate[path].push(result.requestsPerSecond)
      })
      if (options.amount === undefined) {
        // Warm-up of every path, untimed.
        for (const path of paths) yield* run(path, 1)
      }
      for (const path of paths) {
        cpu[path].length = 0
        rate[path].length = 0
      }
      // The order rotates, so no route always runs first or after another.
      for (let round = 0; round < options.rounds; round++) {
        for (let i = 0; i < paths.length; i++) yield* run(paths[(round + i) % paths.length]!, options.seconds)
      }
      const registryNanos: Array<number> = []
      const floorNanos: Array<number> = []
      if (inPlace !== undefined) {
        if (options.amount === undefined) yield* run("/inplace", 1)
        inPlace.take()
        for (let round = 0; round < options.rounds; round++) {
          yield* run("/inplace", options.seconds)
          const [registryMean, floorMean] = inPlace.take()
          registryNanos.push(registryMean)
          floorNanos.push(floorMean)
        }
      }
      const bare = rate["/bare"]
      const guarded = rate["/guarded"]
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
        cpuCostPercent: (median(cpu["/guarded"]) / median(cpu["/bare"]) - 1) * 100,
        lookupCpuMicrosPerRequest: median(cpu["/lookup"]),
        floorCpuMicrosPerRequest: median(cpu["/floor"]),
        inPlace: inPlace === undefined ? undefined : {
          registryNanos: median(registryNanos),
          floorNanos: median(floorNanos),
          ratio: median(floorNanos) / median(registryNanos)
        }
      } satisfies GuardPair
    })

    const guards = [
      yield* pair("McpBearerAuth", "Effect HttpRouter on node:http", `http://127.0.0.1:${server.address.port}`),
      yield* pair("nodeGuard", "node:http", nodeServer.base, nodeInPlace),
      yield* pair("webGuard", "@hono/node-server request listener", webServer.base, webInPlace)
    ]
    return {
      ...guards[0]!,
      liveCredentials: options.live,
      connections: options.connections,
      secondsPerRun: options.seconds,
      pinned,
      guards
    }
  }))
