/**
 * An embedded MCP server, guarded by the registry, ready to hand to agent CLIs.
 *
 * `layer(options)` listens on `127.0.0.1` (port 0 picks a free port by
 * default), serves MCP over Streamable HTTP at `/mcp` with Effect's own
 * `effect/ai` `McpServer`, and puts `McpBearerAuth` in front of it: a request
 * reaches a tool only with a live credential, and every such request slides
 * that credential's expiry. Tool handlers read `McpBearerAuth.CurrentCredential`
 * to learn which thread and provider instance is calling. An MCP session
 * belongs to the credential that opened it: another credential gets 404 on it.
 * When that credential leaves the registry, its sessions end, as a DELETE
 * would end them.
 *
 * The endpoint URL to give a child process is on the `McpHttpServer` service.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as McpProtocol from "effect/ai/McpProtocol"
import * as McpServer from "effect/ai/McpServer"
import * as Tool from "effect/ai/Tool"
import * as Toolkit from "effect/ai/Toolkit"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import type { ServeError } from "effect/http/HttpServerError"
import * as SessionBinding from "./internal/sessionBinding.ts"
import { SessionTerminationError } from "./internal/sessionBinding.ts"
import * as McpBearerAuth from "./McpBearerAuth.ts"
import type { McpSessionRegistry } from "./McpSessionRegistry.ts"

/**
 * Where the server listens and what it says about itself, plus every guard
 * option of `McpBearerAuth.Options`.
 *
 * @since 0.1.0
 */
export interface Options extends McpBearerAuth.Options {
  /**
   * The interface to bind. Default `127.0.0.1`: only processes on this
   * machine can connect. Binding another interface also needs `allowedHosts`,
   * since the default accepts only the loopback names.
   */
  readonly host?: string | undefined
  /** The port. Default `0`: a free port, read back from `McpHttpServer.url`. */
  readonly port?: number | undefined
  /** The MCP endpoint path. Default `/mcp`. */
  readonly path?: HttpRouter.PathInput | undefined
  /** The server name sent at MCP initialization. Default `mcp-session-registry`. */
  readonly name?: string | undefined
  /** The server version sent at MCP initialization. Default `0.1.0`. */
  readonly version?: string | undefined
  /** Whether to register the `session_info` tool (see `SessionInfo`). Default `true`. */
  readonly sessionInfoTool?: boolean | undefined
  /** Whether to log one line per HTTP response (path only, never the query). Default `false`. */
  readonly logRequests?: boolean | undefined
}

/**
 * The running server: where a child process should connect.
 *
 * @since 0.1.0
 */
export class McpHttpServer extends Context.Service<McpHttpServer, {
  /** The MCP endpoint, like `http://127.0.0.1:53121/mcp`. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly path: string
}>()("mcp-session-registry/McpHttpServer") {}

/**
 * The MCP transport offers no way to end a session from the server side, so
 * the sessions of revoked credentials would stay open in it: fails `layer`
 * and `layerRoutes` before the server serves.
 *
 * @since 0.1.0
 */
export { SessionTerminationError }

/**
 * The MCP protocol revisions served: the sessionful Streamable HTTP ones that
 * the official SDK, Claude Code and Codex speak.
 *
 * @since 0.1.0
 */
export const protocols = [McpProtocol.v2025_11_25, McpProtocol.v2025_06_18, McpProtocol.v2025_03_26] as const

/**
 * A tool that tells the calling agent who it is to the host: its thread,
 * provider instance, provider session and credential, and when its
 * credential now expires. Useful to check the wiring of a new provider.
 *
 * @since 0.1.0
 */
export const SessionInfo = Tool.make("session_info", {
  description: "Tells the calling agent session which thread and provider instance its credential belongs to.",
  success: Schema.Struct({
    threadId: Schema.String,
    providerInstanceId: Schema.String,
    providerSessionId: Schema.String,
    credentialId: Schema.String,
    capabilities: Schema.Array(Schema.String),
    lastUsedAt: Schema.Number,
    idleExpiresAt: Schema.Number,
    expiresAt: Schema.Number
  }),
  dependencies: [McpBearerAuth.CurrentCredential]
})

/**
 * The toolkit holding `SessionInfo`.
 *
 * @since 0.1.0
 */
export const SessionInfoToolkit = Toolkit.make(SessionInfo)

/**
 * Registers `SessionInfo` with an `McpServer`.
 *
 * @since 0.1.0
 */
export const layerSessionInfo = McpServer.toolkit(SessionInfoToolkit).pipe(
  Layer.provide(SessionInfoToolkit.toLayer({
    session_info: () =>
      Effect.map(McpBearerAuth.CurrentCredential, (credential) => ({
        threadId: credential.threadId,
        providerInstanceId: credential.providerInstanceId,
        providerSessionId: credential.providerSessionId,
        credentialId: credential.credentialId,
        capabilities: credential.capabilities,
        lastUsedAt: credential.lastUsedAt,
        idleExpiresAt: credential.idleExpiresAt,
        expiresAt: credential.expiresAt
      }))
  }))
)

/**
 * The guarded MCP routes on an existing `HttpRouter`, for hosts that serve
 * other routes too. Reads the bound port from `HttpServer` for the default
 * allow-lists. `registrations` are your own tools, resources and prompts
 * (`McpServer.toolkit(...)` layers); their handlers may read
 * `McpBearerAuth.CurrentCredential`.
 *
 * @since 0.1.0
 */
export const layerRoutes = <RA = never, RE = never, RR = never>(
  options: Options & { readonly registrations?: Layer.Layer<RA, RE, RR> | undefined } = {}
): Layer.Layer<
  McpServer.McpServer,
  McpBearerAuth.GuardConfigError | SessionTerminationError | Cause.IllegalArgumentError | RE,
  | HttpRouter.HttpRouter
  | HttpServer.HttpServer
  | McpSessionRegistry
  | Exclude<McpServer.McpRequest.Without<RR>, McpServer.McpServer>
> =>
  Layer.unwrap(Effect.gen(function*() {
    // The guard reads the bound port from it for its default allow-lists.
    yield* HttpServer.HttpServer
    const registrations = options.sessionInfoTool === false
      ? (options.registrations ?? Layer.empty)
      : Layer.merge(layerSessionInfo, options.registrations ?? Layer.empty)
    const path = options.path ?? "/mcp"
    // One binding shared by the middleware and the router below, which hands
    // it the transport's DELETE handler to end a revoked credential's sessions.
    const sessions = yield* SessionBinding.make(path)
    return McpServer.layerHttp({
      name: options.name ?? "mcp-session-registry",
      version: options.version ?? "0.1.0",
      path,
      protocols,
      // The guard judges Origin (case-insensitively) and hides it from the
      // transport, whose own exact-match check would answer an origin the
      // guard accepted with an empty-bodied 403: every refusal is the guard's.
      allowedOrigins: [],
      allowSessionTermination: true,
      registrations
    }).pipe(
      // The transport registers its routes as its layer is built: checked
      // right after, so a transport whose sessions cannot be ended fails the
      // layer before the server serves, not at the first revocation.
      Layer.tap(() => sessions.ready),
      Layer.provide(sessions.middleware.combine(McpBearerAuth.middleware(options, { forgetOrigin: true })).layer),
      Layer.provide(sessions.layerRouter)
    )
  })) as any

/**
 * Where and how `layerGuarded` serves.
 *
 * @since 0.1.0
 */
export interface ServeOptions extends McpBearerAuth.Options {
  /** The interface to bind. Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** The port. Default `0`: a free port, read back from `HttpServer.HttpServer`'s `address`. */
  readonly port?: number | undefined
  /** Whether to log one line per HTTP response (path only, never the query). Default `false`. */
  readonly logRequests?: boolean | undefined
  /**
   * Whether to put the guard in front of `routes`. Default `true`; `false`
   * serves the very same stack without it, as a benchmark baseline.
   */
  readonly guard?: boolean | undefined
}

const serveOn = <A, E, R>(routes: Layer.Layer<A, E, R>, options: ServeOptions) =>
  HttpRouter.serve(routes, { disableLogger: options.logRequests !== true, disableListenLog: true }).pipe(
    Layer.provide(McpBearerAuth.layerRedactQueryToken),
    Layer.provideMerge(
      NodeHttpServer.layerServer(createServer, { host: options.host ?? "127.0.0.1", port: options.port ?? 0 })
    )
  )

/**
 * Serves any `HttpRouter` routes behind `McpBearerAuth` on a Node HTTP server
 * (default `127.0.0.1`, a free port). Handlers read
 * `McpBearerAuth.CurrentCredential`; the bound address is on
 * `HttpServer.HttpServer`. This is the guard exactly as `layer` runs it, for
 * tests, benchmarks and hosts with their own routes.
 *
 * ```ts
 * const Ping = HttpRouter.add("GET", "/ping", HttpServerResponse.text("pong"))
 * const Guarded = McpHttpServer.layerGuarded(Ping, { port: 0 }).pipe(
 *   Layer.provideMerge(McpSessionRegistry.layer())
 * )
 * // HttpServer.HttpServer's address has the port; `guard: false` gives the unguarded baseline.
 * ```
 *
 * @since 0.1.0
 */
export const layerGuarded = <A, E, R>(
  routes: Layer.Layer<A, E, R>,
  options: ServeOptions = {}
): Layer.Layer<
  HttpServer.HttpServer,
  McpBearerAuth.GuardConfigError | ServeError | HttpRouter.Request.Without<E>,
  | McpSessionRegistry
  | Exclude<
    HttpRouter.Request.Without<R>,
    HttpRouter.HttpRouter | HttpServer.HttpServer | McpBearerAuth.CurrentCredential
  >
> =>
  serveOn(
    options.guard === false ? routes : Layer.provide(routes as Layer.Layer<A, E, any>, McpBearerAuth.layer(options)),
    options
  ) as any

/**
 * The whole server as one layer: binds the address, serves the guarded MCP
 * endpoint, and provides `McpHttpServer` (the URL), `McpServer.McpServer`
 * and `HttpServer.HttpServer`. Closing the layer stops accepting requests
 * before the registry it depends on shuts down.
 *
 * ```ts
 * const Live = McpHttpServer.layer({ port: 0 }).pipe(
 *   Layer.provideMerge(McpSessionRegistry.layer({ idleTimeout: "30 minutes" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = <RA = never, RE = never, RR = never>(
  options: Options & { readonly registrations?: Layer.Layer<RA, RE, RR> | undefined } = {}
): Layer.Layer<
  McpHttpServer | McpServer.McpServer | HttpServer.HttpServer,
  | McpBearerAuth.GuardConfigError
  | SessionTerminationError
  | Cause.IllegalArgumentError
  | ServeError
  | RE,
  McpSessionRegistry | Exclude<McpServer.McpRequest.Without<RR>, McpServer.McpServer>
> => {
  const host = options.host ?? "127.0.0.1"
  const path = options.path ?? "/mcp"
  const endpoint = Layer.effect(
    McpHttpServer,
    Effect.map(HttpServer.HttpServer, (server) => {
      const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
      const urlHost = host.includes(":") ? `[${host}]` : host
      return McpHttpServer.of({ url: `http://${urlHost}:${port}${path}`, host, port, path })
    })
  )
  return endpoint.pipe(Layer.provideMerge(serveOn(layerRoutes(options), options))) as any
}
