/**
 * The bearer-token guard for an MCP endpoint served by Effect's HTTP server.
 *
 * `layer(options)` is an `HttpRouter` middleware: provide it to the routes it
 * guards. For every request it checks, in this order and before any handler
 * runs:
 *
 * 1. `Host` is on the allow-list (default: `localhost`, `127.0.0.1` and
 *    `[::1]` at the bound port), else 403, so a page that reached the server
 *    through DNS rebinding gets nothing (MCP SDK advisory GHSA-w48q-cv73-mx4w);
 * 2. `Origin`, when sent, is on the allow-list (default: the same loopback
 *    names over http and https), else 403;
 * 3. there is at most one `Authorization` header, else 400;
 * 4. the query string carries no `access_token`, else 400: a token in a URL
 *    ends up in logs and histories, so it is never accepted;
 * 5. `Authorization: Bearer <token>` resolves through the registry, which
 *    slides the credential's expiry; else 401 with an RFC 6750 challenge;
 * 6. the credential holds the route's `requiredCapability`, if any, else 403
 *    with `error="insufficient_scope"`.
 *
 * A registry whose store cannot answer (`StoreUnavailable`: Redis down or
 * frozen) gets 503 with `Retry-After: 1`, never 401: a 401 makes an MCP
 * client such as Claude Code drop the server for the rest of its session,
 * though the token may be perfectly live.
 *
 * Every refusal is a prebuilt response with a JSON-RPC error body (so MCP
 * clients can show it) and `Cache-Control: no-store`; none is a 500, and
 * none echoes the presented token. The handler reads the caller from
 * `CurrentCredential`.
 *
 * The per-request cost is a few header reads and one registry lookup: O(1) in
 * the number of live credentials, with no allocation on a refusal.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as UrlParams from "effect/http/UrlParams"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type { CredentialScope, InvalidCredential, InvalidReason } from "./Credential.ts"
import { descriptions as invalidDescriptions, InvalidReason as InvalidReasonSchema } from "./Credential.ts"
import type { StoreUnavailable } from "./McpSessionRegistry.ts"
import { McpSessionRegistry } from "./McpSessionRegistry.ts"

/**
 * The credential of the current request, as `resolve` left it (expiry already
 * slid by this use). Provided by the guard to the handlers it protects.
 *
 * @since 0.1.0
 */
export class CurrentCredential extends Context.Service<CurrentCredential, CredentialScope>()(
  "mcp-session-registry/McpBearerAuth/CurrentCredential"
) {}

/**
 * What the guard can be told.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The `realm` of every challenge. Default `"mcp"`. */
  readonly realm?: string | undefined
  /**
   * The OAuth protected resource metadata URL (RFC 9728), sent as
   * `resource_metadata` in every 401 and `insufficient_scope` challenge.
   * Default none.
   */
  readonly resourceMetadataUrl?: string | undefined
  /**
   * Accepted `Host` header values, as `name:port` (compared case-insensitively).
   * `"*"` accepts any host: only for a server behind a proxy that checks it.
   * Default: `localhost`, `127.0.0.1` and `[::1]` at the port the server is
   * bound to (at any port when the guard runs without an `HttpServer`, as in
   * `HttpRouter.toWebHandler`).
   */
  readonly allowedHosts?: ReadonlyArray<string> | "*" | undefined
  /**
   * Accepted `Origin` header values, like `http://localhost:3000`. A request
   * without `Origin` (every non-browser client) is not affected. `"*"`
   * accepts any origin. Default: the default hosts over `http` and `https`.
   */
  readonly allowedOrigins?: ReadonlyArray<string> | "*" | undefined
  /**
   * A capability the credential must hold (see `IssueRequest.capabilities`)
   * for the guarded routes. Give each route its own guard layer to require
   * different capabilities. Default none.
   */
  readonly requiredCapability?: string | undefined
}

/**
 * A guard option that cannot work, such as a realm with a line break or a
 * resource metadata URL that is not an absolute http(s) URL. Fails the layer.
 *
 * @since 0.1.0
 */
export class GuardConfigError extends Schema.TaggedError<GuardConfigError>()("GuardConfigError", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid McpBearerAuth option ${this.option}: ${this.detail}`
  }
}

/**
 * Why the guard refused a request:
 *
 * - `host`, `origin`: outside the allow-list (403);
 * - `duplicate-authorization`: more than one `Authorization` header (400);
 * - `query-token`: an `access_token` in the query string (400);
 * - `no-credentials`: no `Authorization` header (401, challenge without `error`);
 * - `scheme`: an `Authorization` scheme other than `Bearer` (401, `invalid_token`);
 * - an `InvalidReason` from the registry: the token was refused (401, `invalid_token`);
 * - `unverifiable`: the registry lookup itself died (for instance while the
 *   registry shuts down); logged, and refused like a bad token (401);
 * - `insufficient-capability`: the credential lacks `requiredCapability` (403);
 * - `store-unavailable`: the registry's store could not answer
 *   (`StoreUnavailable`): 503 with `Retry-After: 1`, no challenge.
 *
 * @since 0.1.0
 */
export type RejectionKind =
  | "host"
  | "origin"
  | "duplicate-authorization"
  | "query-token"
  | "no-credentials"
  | "scheme"
  | InvalidReason
  | "unverifiable"
  | "insufficient-capability"
  | "store-unavailable"

/**
 * A refusal, built once per guard.
 *
 * @since 0.1.0
 */
export interface Rejection {
  readonly kind: RejectionKind
  readonly status: 400 | 401 | 403 | 503
  /** The `WWW-Authenticate` header value, for 400, 401 and `insufficient_scope`. */
  readonly wwwAuthenticate: string | undefined
  /** The JSON-RPC error object sent as the body. */
  readonly body: JsonRpcErrorBody
  readonly response: HttpServerResponse.HttpServerResponse
}

/**
 * The body of every refusal: a JSON-RPC 2.0 error response with `id: null`.
 * `data.error` is the RFC 6750 error code when there is one, `data.reason` the
 * `RejectionKind`.
 *
 * @since 0.1.0
 */
export interface JsonRpcErrorBody {
  readonly jsonrpc: "2.0"
  readonly id: null
  readonly error: {
    readonly code: number
    readonly message: string
    readonly data: { readonly reason: RejectionKind; readonly error?: string | undefined }
  }
}

/**
 * The JSON-RPC error codes of refusals, from the implementation-defined server
 * range: `unauthorized` for 401, `forbidden` for 403, `unavailable` for 503;
 * a 400 uses JSON-RPC's own "Invalid Request".
 *
 * @since 0.1.0
 */
export const jsonRpcErrorCodes = {
  badRequest: -32600,
  unauthorized: -32001,
  forbidden: -32003,
  unavailable: -32004
} as const

/**
 * A built guard: the check the middleware runs, usable on its own by hosts
 * that wire their own server.
 *
 * @since 0.1.0
 */
export interface Guard {
  /**
   * Checks a request and resolves its token (a use that slides the expiry).
   * Fails with the `Rejection` to send.
   */
  readonly authenticate: (
    request: HttpServerRequest.HttpServerRequest,
    searchParams?: Readonly<Record<string, unknown>> | undefined
  ) => Effect.Effect<CredentialScope, Rejection>
  /**
   * `authenticate` without the intermediate error channel, as the middleware
   * runs it: `onAccept` with the credential or `onReject` with the refusal.
   */
  readonly handle: <A, E, R>(
    request: HttpServerRequest.HttpServerRequest,
    searchParams: Readonly<Record<string, unknown>> | undefined,
    onAccept: (scope: CredentialScope) => Effect.Effect<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  /**
   * `handle` with its continuations bound once: returns the per-request
   * check, which allocates no closures. The middleware builds one per route.
   */
  readonly wrap: <A, E, R>(
    onAccept: (scope: CredentialScope) => Effect.Effect<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => (
    request: HttpServerRequest.HttpServerRequest,
    searchParams: Readonly<Record<string, unknown>> | undefined
  ) => Effect.Effect<A, E, R>
  /** Every refusal this guard can send, by kind. */
  readonly rejections: { readonly [K in RejectionKind]: Rejection }
}

const loopbackNames = ["localhost", "127.0.0.1", "[::1]"] as const

const descriptions: Record<Exclude<RejectionKind, InvalidReason>, string> = {
  "host": "the Host header is not allowed",
  "origin": "the Origin header is not allowed",
  "duplicate-authorization": "more than one Authorization header was sent",
  "query-token": "bearer tokens are not accepted in the query string; send an Authorization header",
  "no-credentials": "no bearer token was presented",
  "scheme": "the Authorization scheme must be Bearer",
  "unverifiable": "the bearer token could not be verified",
  "insufficient-capability": "the credential lacks a capability this endpoint requires",
  "store-unavailable": "the credential store is unavailable; retry shortly"
}

// Header values are built once, so an unusable option must fail here rather
// than make Node throw (a 500) on the first refusal: Node refuses control
// characters and anything above U+00FF in a header, so only printable ASCII
// passes (an international host or URL is written in its ASCII form).
const unprintable = /[^\x20-\x7e]/

const quote = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`

const checkText = (option: string, value: unknown): Effect.Effect<string, GuardConfigError> =>
  typeof value !== "string" || value.length === 0
    ? Effect.fail(new GuardConfigError({ option, detail: "must be a non-empty string" }))
    : unprintable.test(value)
    ? Effect.fail(new GuardConfigError({ option, detail: "must be printable ASCII (no control or non-ASCII characters)" }))
    : Effect.succeed(value)

const checkList = (
  option: string,
  value: ReadonlyArray<string> | "*" | undefined
): Effect.Effect<ReadonlySet<string> | "*" | undefined, GuardConfigError> => {
  if (value === undefined || value === "*") return Effect.succeed(value)
  if (!Array.isArray(value)) {
    return Effect.fail(new GuardConfigError({ option, detail: `must be an array of strings or "*"` }))
  }
  return Effect.map(
    Effect.forEach(value, (entry) => checkText(option, entry)),
    (entries) => entries.includes("*") ? "*" as const : new Set(entries.map((entry) => entry.toLowerCase()))
  )
}

/**
 * The options after validation.
 *
 * @since 0.1.0
 */
export interface Resolved {
  readonly realm: string
  readonly resourceMetadataUrl: string | undefined
  /** `undefined`: the loopback names at `port` (any port when `port` is `undefined`). */
  readonly allowedHosts: ReadonlySet<string> | "*" | undefined
  readonly allowedOrigins: ReadonlySet<string> | "*" | undefined
  readonly requiredCapability: string | undefined
}

/**
 * Validates options and fills in the defaults.
 *
 * @since 0.1.0
 */
export const resolveOptions = Effect.fnUntraced(function*(
  options: Options = {}
): Effect.fn.Return<Resolved, GuardConfigError> {
  const realm = yield* checkText("realm", options.realm ?? "mcp")
  let resourceMetadataUrl: string | undefined
  if (options.resourceMetadataUrl !== undefined) {
    resourceMetadataUrl = yield* checkText("resourceMetadataUrl", options.resourceMetadataUrl)
    const url = URL.parse(resourceMetadataUrl)
    if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) {
      return yield* new GuardConfigError({ option: "resourceMetadataUrl", detail: "must be an absolute http(s) URL" })
    }
  }
  const requiredCapability = options.requiredCapability === undefined
    ? undefined
    : yield* checkText("requiredCapability", options.requiredCapability)
  return {
    realm,
    resourceMetadataUrl,
    allowedHosts: yield* checkList("allowedHosts", options.allowedHosts),
    allowedOrigins: yield* checkList("allowedOrigins", options.allowedOrigins),
    requiredCapability
  }
})

/**
 * The loopback `Host` values accepted by default at a port.
 *
 * @since 0.1.0
 */
export const loopbackHosts = (port: number): ReadonlyArray<string> => loopbackNames.map((name) => `${name}:${port}`)

/**
 * The loopback `Origin` values accepted by default at a port.
 *
 * @since 0.1.0
 */
export const loopbackOrigins = (port: number): ReadonlyArray<string> =>
  loopbackHosts(port).flatMap((host) => [`http://${host}`, `https://${host}`])

const makeRejection = (resolved: Resolved, kind: RejectionKind): Rejection => {
  const isInvalid = InvalidReasonSchema.literals.includes(kind as InvalidReason)
  const description = isInvalid ? invalidDescriptions[kind as InvalidReason] : descriptions[kind as keyof typeof descriptions]
  const status: Rejection["status"] = kind === "store-unavailable"
    ? 503
    : kind === "host" || kind === "origin" || kind === "insufficient-capability"
    ? 403
    : kind === "duplicate-authorization" || kind === "query-token"
    ? 400
    : 401
  const error = status === 400
    ? "invalid_request"
    : kind === "insufficient-capability"
    ? "insufficient_scope"
    : status === 401 && kind !== "no-credentials"
    ? "invalid_token"
    : undefined
  let wwwAuthenticate: string | undefined
  if ((status !== 403 && status !== 503) || error !== undefined) {
    const params = [`realm=${quote(resolved.realm)}`]
    if (resolved.resourceMetadataUrl !== undefined && status !== 400) {
      params.push(`resource_metadata=${quote(resolved.resourceMetadataUrl)}`)
    }
    if (error !== undefined) {
      params.push(`error=${quote(error)}`, `error_description=${quote(description)}`)
    }
    if (kind === "insufficient-capability" && resolved.requiredCapability !== undefined) {
      params.push(`scope=${quote(resolved.requiredCapability)}`)
    }
    wwwAuthenticate = `Bearer ${params.join(", ")}`
  }
  const title = status === 400
    ? "Bad request"
    : status === 401
    ? "Unauthorized"
    : status === 503
    ? "Service unavailable"
    : "Forbidden"
  const body: JsonRpcErrorBody = {
    jsonrpc: "2.0",
    id: null,
    error: {
      code: status === 400
        ? jsonRpcErrorCodes.badRequest
        : status === 401
        ? jsonRpcErrorCodes.unauthorized
        : status === 503
        ? jsonRpcErrorCodes.unavailable
        : jsonRpcErrorCodes.forbidden,
      message: `${title}: ${description}`,
      data: error === undefined ? { reason: kind } : { reason: kind, error }
    }
  }
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (wwwAuthenticate !== undefined) headers["www-authenticate"] = wwwAuthenticate
  if (status === 503) headers["retry-after"] = "1"
  const response = HttpServerResponse.text(JSON.stringify(body), {
    status,
    headers,
    contentType: "application/json"
  })
  return { kind, status, wwwAuthenticate, body, response }
}

const rejectionKinds: ReadonlyArray<RejectionKind> = [
  "host",
  "origin",
  "duplicate-authorization",
  "query-token",
  "no-credentials",
  "scheme",
  ...InvalidReasonSchema.literals,
  "unverifiable",
  "insufficient-capability",
  "store-unavailable"
]

// The three headers the guard reads. `authorizations` counts them: Node keeps
// only the first of repeated Authorization headers in `headers`.
interface GuardHeaders {
  host: string | undefined
  origin: string | undefined
  authorization: string | undefined
  authorizations: number
}

const equalsIgnoringCase = (name: string, lower: string): boolean => name === lower || name.toLowerCase() === lower

// Scans Node's raw header list once instead of asking for `headers`, which
// Node builds lazily: a trivial route that never reads headers never pays for it.
const scanRawHeaders = (raw: ReadonlyArray<string>, into: GuardHeaders): GuardHeaders => {
  into.host = into.origin = into.authorization = undefined
  into.authorizations = 0
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    switch (name.length) {
      case 4:
        // Like Node: the first Host wins.
        if (into.host === undefined && equalsIgnoringCase(name, "host")) into.host = raw[i + 1]
        break
      case 6:
        // Like Node: repeated Origins are joined, and never match an allowed one.
        if (equalsIgnoringCase(name, "origin")) {
          into.origin = into.origin === undefined ? raw[i + 1] : `${into.origin}, ${raw[i + 1]}`
        }
        break
      case 13:
        if (equalsIgnoringCase(name, "authorization")) {
          if (into.authorization === undefined) into.authorization = raw[i + 1]
          into.authorizations++
        }
        break
    }
  }
  return into
}

const readHeaders = (headers: Readonly<Record<string, unknown>>, into: GuardHeaders): GuardHeaders => {
  const text = (value: unknown) => (value === undefined || typeof value === "string" ? value : String(value))
  into.host = text(headers["host"])
  into.origin = text(headers["origin"])
  into.authorization = text(headers["authorization"])
  // Where repeated headers are joined (fetch), a comma shows it: a token never holds one.
  into.authorizations = into.authorization === undefined ? 0 : into.authorization.includes(",") ? 2 : 1
  return into
}

const hasQueryToken = (url: string, searchParams: Readonly<Record<string, unknown>> | undefined): boolean => {
  const query = url.indexOf("?")
  if (query === -1) return false
  if (searchParams !== undefined) return searchParams["access_token"] !== undefined
  return new URLSearchParams(url.slice(query + 1)).has("access_token")
}

const hostName = (host: string): string => {
  const colon = host.lastIndexOf(":")
  return colon === -1 || host.endsWith("]") ? host : host.slice(0, colon)
}

/**
 * Builds a guard from options, a registry and the port the server listens
 * on (`undefined` when unknown: then the default hosts and origins accept the
 * loopback names at any port).
 *
 * @since 0.1.0
 */
export const makeGuard = Effect.fnUntraced(function*(
  options: Options | undefined,
  registry: McpSessionRegistry["Service"],
  port: number | undefined
): Effect.fn.Return<Guard, GuardConfigError> {
  const resolved = yield* resolveOptions(options)
  const rejections = Object.fromEntries(
    rejectionKinds.map((kind) => [kind, makeRejection(resolved, kind)])
  ) as { readonly [K in RejectionKind]: Rejection }

  const hosts = resolved.allowedHosts ?? (port === undefined ? undefined : new Set(loopbackHosts(port)))
  const origins = resolved.allowedOrigins ??
    (port === undefined ? undefined : new Set(loopbackOrigins(port)))
  const anyPortLoopback = new Set<string>(loopbackNames)
  const isAllowedHost = (host: string | undefined): boolean => {
    if (hosts === "*") return true
    if (host === undefined) return false
    if (hosts !== undefined && hosts.has(host)) return true
    const lower = host.toLowerCase()
    return hosts === undefined ? anyPortLoopback.has(hostName(lower)) : hosts.has(lower)
  }
  const isAllowedOrigin = (origin: string | undefined): boolean => {
    if (origin === undefined || origins === "*") return true
    const lower = origin.toLowerCase()
    if (origins !== undefined) return origins.has(lower)
    const url = URL.parse(lower)
    return url !== null && (url.protocol === "http:" || url.protocol === "https:") &&
      anyPortLoopback.has(url.hostname)
  }
  const required = resolved.requiredCapability

  // Reused by every request: the scan finishes before anything can yield.
  const scratch: GuardHeaders = { host: undefined, origin: undefined, authorization: undefined, authorizations: 0 }

  // Everything before the registry lookup, synchronously: the token to
  // resolve, or the refusal to send.
  const precheck = (
    request: HttpServerRequest.HttpServerRequest,
    searchParams: Readonly<Record<string, unknown>> | undefined
  ): string | Rejection => {
    const source = request.source as { readonly rawHeaders?: unknown } | undefined
    const { authorization, authorizations, host, origin } = source !== undefined && Array.isArray(source.rawHeaders)
      ? scanRawHeaders(source.rawHeaders as ReadonlyArray<string>, scratch)
      : readHeaders(request.headers, scratch)
    if (!isAllowedHost(host)) return rejections.host
    if (origin !== undefined && !isAllowedOrigin(origin)) return rejections.origin
    if (authorizations > 1) return rejections["duplicate-authorization"]
    if (hasQueryToken(request.url, searchParams)) return rejections["query-token"]
    if (authorization === undefined) return rejections["no-credentials"]
    const space = authorization.indexOf(" ")
    const scheme = space === -1 ? authorization : authorization.slice(0, space)
    if (scheme !== "Bearer" && (scheme.length !== 6 || scheme.toLowerCase() !== "bearer")) return rejections.scheme
    return space === -1 ? "" : authorization.slice(space + 1).trim()
  }

  // Built once per route, so a request allocates no closures of its own.
  const wrap = <A, E, R>(
    onAccept: (scope: CredentialScope) => Effect.Effect<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => {
    const outcomes = {
      onFailure: (cause: Cause.Cause<InvalidCredential | StoreUnavailable>): Effect.Effect<A, E, R> => {
        for (const reason of cause.reasons) {
          if (reason._tag === "Fail") {
            return reason.error._tag === "StoreUnavailable"
              ? onReject(rejections["store-unavailable"])
              : onReject(rejections[reason.error.reason])
          }
        }
        if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
        // A defect, not a bad token: worth a log line, still never a 500.
        return Effect.andThen(
          Effect.logError("McpBearerAuth: the registry lookup failed; refused with 401", Cause.pretty(cause)),
          onReject(rejections.unverifiable)
        )
      },
      onSuccess: required === undefined
        ? onAccept
        : (scope: CredentialScope) =>
          scope.capabilities.includes(required) ? onAccept(scope) : onReject(rejections["insufficient-capability"])
    }
    return (
      request: HttpServerRequest.HttpServerRequest,
      searchParams: Readonly<Record<string, unknown>> | undefined
    ): Effect.Effect<A, E, R> => {
      const checked = precheck(request, searchParams)
      return typeof checked === "string"
        ? Effect.matchCauseEffect(registry.resolve(checked), outcomes)
        : onReject(checked)
    }
  }

  const handle = <A, E, R>(
    request: HttpServerRequest.HttpServerRequest,
    searchParams: Readonly<Record<string, unknown>> | undefined,
    onAccept: (scope: CredentialScope) => Effect.Effect<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => wrap(onAccept, onReject)(request, searchParams)

  const checkAuthenticated = wrap<CredentialScope, Rejection, never>(Effect.succeed, Effect.fail)

  const authenticate = (
    request: HttpServerRequest.HttpServerRequest,
    searchParams?: Readonly<Record<string, unknown>> | undefined
  ): Effect.Effect<CredentialScope, Rejection> => checkAuthenticated(request, searchParams)

  return { authenticate, handle, wrap, rejections }
})

/**
 * The guard as an `HttpRouter` middleware that provides `CurrentCredential`.
 * Needs `McpSessionRegistry`; reads the bound port from `HttpServer` when
 * there is one.
 *
 * @since 0.1.0
 */
export const middleware = (options?: Options) =>
  HttpRouter.middleware<{ provides: CurrentCredential }>()(
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry
      const server = yield* Effect.serviceOption(HttpServer.HttpServer)
      const port = Option.isSome(server) && server.value.address._tag !== "UnixPathAddress"
        ? server.value.address.port
        : undefined
      const guard = yield* makeGuard(options, registry, port)
      const onReject = (rejection: Rejection) => Effect.succeed(rejection.response)
      return (httpEffect) => {
        const check = guard.wrap((scope) => Effect.provideService(httpEffect, CurrentCredential, scope), onReject)
        return Effect.withFiber((fiber) =>
          check(
            Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest),
            Context.getOrUndefined(fiber.context, HttpServerRequest.ParsedSearchParams)
          )
        )
      }
    })
  )

/**
 * The guard as a layer: provide it to the route layers it protects.
 *
 * ```ts
 * const Ping = HttpRouter.add("GET", "/ping", Effect.gen(function*() {
 *   const credential = yield* McpBearerAuth.CurrentCredential
 *   return HttpServerResponse.text(credential.threadId)
 * })).pipe(Layer.provide(McpBearerAuth.layer({ realm: "my-host" })))
 *
 * HttpRouter.serve(Ping).pipe(
 *   Layer.provide(McpBearerAuth.layerRedactQueryToken),
 *   Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
 *   Layer.provide(McpSessionRegistry.layer())
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  HttpRouter.Request<"Requires", CurrentCredential>,
  GuardConfigError,
  McpSessionRegistry
> => middleware(options).layer

/**
 * Adds `access_token` to the URL parameters Effect redacts from its request
 * spans and logs. Effect's server records the request URL before any
 * middleware runs, so the guard alone cannot keep a token pasted into a URL
 * out of a trace: provide this to the server layer (`HttpRouter.serve`).
 * `McpHttpServer` does so already.
 *
 * @since 0.1.0
 */
export const layerRedactQueryToken: Layer.Layer<never> = Layer.effect(
  UrlParams.CurrentRedactedNames,
  Effect.map(UrlParams.CurrentRedactedNames, (names) => [...names, "access_token"])
)
