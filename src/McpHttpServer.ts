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
 * Everything a client can make it hold is bounded (see `Options`): the body
 * of a request, the `initialize` payload a session keeps, the sessions of a
 * credential and of the whole endpoint, and how long an unused session lives.
 * A request whose credential left the registry while its body was still
 * arriving is refused as a fresh one would be, and a message with a member
 * JSON-RPC does not define (Effect's transport would read its `headers` as
 * HTTP headers, session id included) is refused with 400.
 *
 * The endpoint URL to give a child process is on the `McpHttpServer` service.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as McpProtocol from "effect/ai/McpProtocol"
import * as McpServer from "effect/ai/McpServer"
import * as Tool from "effect/ai/Tool"
import * as Toolkit from "effect/ai/Toolkit"
import * as HttpMiddleware from "effect/http/HttpMiddleware"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import type { ServeError } from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as UrlParams from "effect/http/UrlParams"
import * as BearerToken from "./BearerToken.ts"
import * as McpRequest from "./internal/mcpRequest.ts"
import * as SessionBinding from "./internal/sessionBinding.ts"
import { SessionTerminationError } from "./internal/sessionBinding.ts"
import * as McpBearerAuth from "./McpBearerAuth.ts"
import { McpSessionRegistry } from "./McpSessionRegistry.ts"

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
  /**
   * Whether to log one line per HTTP response (path only, never the query;
   * a token in the path is redacted). Default `false`.
   */
  readonly logRequests?: boolean | undefined
  /**
   * The largest request body read, in bytes. A larger one is answered 413
   * with a JSON-RPC error: at once when its `Content-Length` says so, else
   * when the body reaches the limit, before more of it is kept. Default 4 MiB.
   */
  readonly maxBodySize?: number | undefined
  /**
   * The largest body holding an `initialize`, in bytes: the transport keeps
   * the initialize payload for the session's life. A larger one is answered
   * 413. Default 16 KiB.
   */
  readonly maxInitializeSize?: number | undefined
  /**
   * How many MCP sessions one credential may hold at once; a further
   * `initialize` is answered 429 with a JSON-RPC error until one ends.
   * Default 16.
   */
  readonly maxSessionsPerCredential?: number | undefined
  /**
   * How many MCP sessions the endpoint holds at once, over all credentials; a
   * further `initialize` is answered 503 with a JSON-RPC error until one
   * ends. Default 1024.
   */
  readonly maxSessions?: number | undefined
  /**
   * How long an MCP session may go unused (no request in flight, none begun)
   * before it is ended, as its DELETE would end it. Default 30 minutes.
   */
  readonly sessionIdleTimeout?: Duration.Input | undefined
  /**
   * How long the requests in flight when a credential leaves the registry may
   * keep its session open before it is ended anyway. Default 5 seconds.
   */
  readonly revocationGrace?: Duration.Input | undefined
}

/**
 * A server option that cannot work, such as a negative size or a duration
 * that is no duration. Fails the layer.
 *
 * @since 0.1.0
 */
export class ServerConfigError extends Schema.TaggedError<ServerConfigError>()("ServerConfigError", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid McpHttpServer option ${this.option}: ${this.detail}`
  }
}

const checkCount = (option: string, value: unknown, fallback: number): Effect.Effect<number, ServerConfigError> =>
  value === undefined
    ? Effect.succeed(fallback)
    : typeof value === "number" && Number.isSafeInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.fail(new ServerConfigError({ option, detail: "must be a positive integer" }))

const checkDuration = (
  option: string,
  value: Duration.Input | undefined,
  fallback: Duration.Input
): Effect.Effect<Duration.Duration, ServerConfigError> => {
  if (value === undefined) return Effect.succeed(Duration.fromInputUnsafe(fallback))
  const duration = Duration.fromInput(value)
  return duration._tag === "Some" && Duration.isFinite(duration.value) &&
      Duration.toMillis(duration.value) > 0
    ? Effect.succeed(duration.value)
    : Effect.fail(new ServerConfigError({ option, detail: "must be a positive, finite duration" }))
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
  // It only reads the caller's own credential: without these, clients are
  // told the MCP defaults, that it may destroy things and reach the world.
  .annotate(Tool.Readonly, true)
  .annotate(Tool.Destructive, false)
  .annotate(Tool.Idempotent, true)
  .annotate(Tool.OpenWorld, false)

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
  McpBearerAuth.GuardConfigError | ServerConfigError | SessionTerminationError | Cause.IllegalArgumentError | RE,
  | HttpRouter.HttpRouter
  | HttpServer.HttpServer
  | McpSessionRegistry
  | Exclude<McpServer.McpRequest.Without<RR>, McpServer.McpServer>
> =>
  Layer.unwrap(Effect.gen(function*() {
    // The guard reads the bound port from it for its default allow-lists.
    const server = yield* HttpServer.HttpServer
    const port = server.address._tag === "UnixPathAddress" ? undefined : server.address.port
    const registrations = options.sessionInfoTool === false
      ? (options.registrations ?? Layer.empty)
      : Layer.merge(layerSessionInfo, options.registrations ?? Layer.empty)
    const path = options.path ?? "/mcp"
    const registry = yield* McpSessionRegistry
    // A request whose credential left while its body arrived gets the
    // guard's own answer to that token now: the same refusal, tombstone
    // reason included, as a fresh request.
    const guard = yield* McpBearerAuth.makeGuard(options, registry, port)
    const refuse = (request: HttpServerRequest.HttpServerRequest) =>
      guard.handle(
        request,
        undefined,
        () => Effect.succeed(guard.rejections.revoked.response),
        (rejection) => Effect.succeed(rejection.response)
      )
    // One binding shared by the middleware and the router below, which hands
    // it the transport's DELETE handler to end a revoked credential's sessions.
    const sessions = yield* SessionBinding.make(path, {
      gracePeriod: yield* checkDuration("revocationGrace", options.revocationGrace, SessionBinding.defaultGracePeriod),
      limits: {
        maxBodySize: yield* checkCount("maxBodySize", options.maxBodySize, McpRequest.defaultLimits.maxBodySize),
        maxInitializeSize: yield* checkCount(
          "maxInitializeSize",
          options.maxInitializeSize,
          McpRequest.defaultLimits.maxInitializeSize
        )
      },
      maxSessionsPerCredential: yield* checkCount(
        "maxSessionsPerCredential",
        options.maxSessionsPerCredential,
        SessionBinding.defaultMaxSessionsPerCredential
      ),
      maxSessions: yield* checkCount("maxSessions", options.maxSessions, SessionBinding.defaultMaxSessions),
      sessionIdleTimeout: yield* checkDuration(
        "sessionIdleTimeout",
        options.sessionIdleTimeout,
        SessionBinding.defaultSessionIdleTimeout
      ),
      refuse
    })
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

// Percent-encoding spells a token in other characters; decoded, it shows.
const decoded = (url: string): string => {
  try {
    return decodeURIComponent(url)
  } catch {
    return url.replace(/%[0-9A-Fa-f]{2}/g, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)))
  }
}

/**
 * Whether a request target holds anything that looks like a bearer token
 * (`BearerToken.pattern`), as sent or percent-decoded: such a target is kept
 * out of log lines and spans.
 *
 * @since 0.1.0
 */
export const holdsToken = (url: string): boolean =>
  (url.includes(BearerToken.prefix) && BearerToken.pattern.test(url)) ||
  (url.includes("%") && BearerToken.pattern.test(decoded(url)))

const tokens = new RegExp(BearerToken.pattern.source, "g")

/**
 * A request target with every token in it replaced by `<redacted>`; a target
 * whose token shows only once decoded is replaced as a whole.
 *
 * @since 0.1.0
 */
export const redactTarget = (url: string): string => {
  const redacted = url.replace(tokens, "<redacted>")
  return holdsToken(redacted) ? "/<redacted>" : redacted
}

/**
 * Effect's response logger (`HttpMiddleware.logger`) with a token in the
 * request target redacted: the logger records the path before any route
 * middleware, so the guard cannot keep a token pasted into a URL out of the
 * log. Pass it as `HttpRouter.serve`'s `middleware`, with `disableLogger`.
 *
 * @since 0.1.0
 */
export const requestLogger = <E, R>(
  httpApp: Effect.Effect<HttpServerResponse.HttpServerResponse, E, HttpServerRequest.HttpServerRequest | R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, HttpServerRequest.HttpServerRequest | R> =>
  Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    if (!holdsToken(request.url)) return HttpMiddleware.logger(httpApp)
    // The logger reads the redacted view; everything under it the real request.
    return Effect.provideService(
      HttpMiddleware.logger(Effect.provideService(httpApp, HttpServerRequest.HttpServerRequest, request)),
      HttpServerRequest.HttpServerRequest,
      request.modify({ url: redactTarget(request.url) })
    )
  })

/**
 * Keeps requests whose target holds a token out of Effect's request spans
 * (which record the path and query as sent, before any middleware), on top
 * of whatever `HttpMiddleware.TracerDisabledWhen` already excludes, and adds
 * `access_token` to the redacted URL parameters
 * (`McpBearerAuth.layerRedactQueryToken`). Provide it to the server layer;
 * `layer` and `layerGuarded` do.
 *
 * @since 0.1.0
 */
export const layerRedactTokens: Layer.Layer<never> = Layer.merge(
  McpBearerAuth.layerRedactQueryToken,
  Layer.effect(
    HttpMiddleware.TracerDisabledWhen,
    Effect.map(HttpMiddleware.TracerDisabledWhen, (disabled) => (request) =>
      // A token in `access_token` is redacted from the span; any other is not.
      holdsToken(UrlParams.redactUrl(request.url, ["access_token"])) || disabled(request))
  )
)

const serveOn = <A, E, R>(routes: Layer.Layer<A, E, R>, options: ServeOptions) =>
  HttpRouter.serve(routes, {
    disableLogger: true,
    disableListenLog: true,
    ...(options.logRequests === true ? { middleware: requestLogger } : {})
  }).pipe(
    Layer.provide(layerRedactTokens),
    Layer.provideMerge(
      NodeHttpServer.layerServer(createServer, { host: options.host ?? "127.0.0.1", port: options.port ?? 0 })
    )
  )

const notFound = McpRequest.refusal("not-found")

/**
 * Every path the server does not serve answers 404 with a JSON-RPC error
 * body, never an empty one: a client that probes for OAuth metadata
 * (`/.well-known/oauth-protected-resource`, `/.well-known/oauth-authorization-server`,
 * `/.well-known/openid-configuration`) or tries dynamic client registration
 * (`POST /register`) after a 401 can parse the answer, and keeps the 401's
 * reason instead of a parse error. A target holding a token gets the
 * guard's 400 `target-token` instead, as at the endpoint. `options` are the
 * guard's, for the refusal's challenge.
 *
 * @since 0.1.0
 */
export const layerNotFound = (
  options: McpBearerAuth.Options = {}
): Layer.Layer<never, McpBearerAuth.GuardConfigError, HttpRouter.HttpRouter | McpSessionRegistry> =>
  Layer.unwrap(Effect.gen(function*() {
    const guard = yield* McpBearerAuth.makeGuard(options, yield* McpSessionRegistry, undefined)
    const targetToken = guard.rejections["target-token"].response
    return HttpRouter.add(
      "*",
      "*",
      (request) => Effect.succeed(holdsToken(request.url) ? targetToken : notFound)
    )
  }))

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
  | ServerConfigError
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
  return endpoint.pipe(
    Layer.provideMerge(serveOn(Layer.merge(layerRoutes(options), layerNotFound(options)), options))
  ) as any
}
