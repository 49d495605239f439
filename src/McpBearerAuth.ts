/**
 * The bearer-token guard for an MCP endpoint served by Effect's HTTP server.
 *
 * `layer(options)` is an `HttpRouter` middleware: provide it to the routes it
 * guards. Every request is checked before any handler runs, by the rules all
 * of this package's guards share (`guard/rules.ts`): one allowed `Host`
 * (default: `localhost`, `127.0.0.1` and `[::1]` at the bound port) and an
 * allowed `Origin` when one is sent, else 400 or 403; one `Authorization`
 * header and no token anywhere in the URL, else 400; then
 * `Authorization: Bearer <token>` resolves through the registry, which slides
 * the credential's expiry, else 401 with an RFC 6750 challenge; and the
 * credential holds the route's `requiredCapability`, if any, else 403 with
 * `error="insufficient_scope"`.
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
 * The middleware marks every accepted request as a call in flight
 * (`McpSessionRegistry.beginCall`) until its answer ends, a streamed answer
 * when its stream ends: a tool call longer than `idleTimeout` keeps its
 * credential, and its end is a use.
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
import * as Headers from "effect/http/Headers"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as UrlParams from "effect/http/UrlParams"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type { CredentialScope } from "./Credential.ts"
import * as Rules from "./guard/rules.ts"
import * as InFlight from "./internal/inFlight.ts"
import * as SyncLookup from "./internal/syncLookup.ts"
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
export type Options = Rules.Options

/**
 * A guard option that cannot work, such as a realm with a line break or a
 * resource metadata URL that is not an absolute http(s) URL. Fails the layer.
 *
 * @since 0.1.0
 */
export const GuardConfigError = Rules.GuardConfigError

/**
 * @since 0.1.0
 */
export type GuardConfigError = Rules.GuardConfigError

/**
 * Why the guard refused a request (see `Rules.RejectionKind`).
 *
 * @since 0.1.0
 */
export type RejectionKind = Rules.RejectionKind

/**
 * A refusal, built once per guard: the rules' plain `Refusal` and the
 * response that sends it.
 *
 * @since 0.1.0
 */
export interface Rejection extends Rules.Refusal {
  readonly response: HttpServerResponse.HttpServerResponse
}

/**
 * The body of every refusal (see `Rules.JsonRpcErrorBody`).
 *
 * @since 0.1.0
 */
export type JsonRpcErrorBody = Rules.JsonRpcErrorBody

/**
 * The JSON-RPC error codes of refusals.
 *
 * @since 0.1.0
 */
export const jsonRpcErrorCodes = Rules.jsonRpcErrorCodes

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

/**
 * Makes an effect as interruptible as the code around an
 * `Effect.uninterruptibleMask` was.
 *
 * @internal
 */
type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * What runs once a request is accepted: it runs uninterruptibly, in the step
 * that began the call, so it must make sure `end` runs however the answer
 * ends (`InFlight.whileAnswering`) and run what may be interrupted (the
 * handler) under `restore`.
 */
type OnAccept<A, E, R> = (
  scope: CredentialScope,
  end: () => void,
  request: HttpServerRequest.HttpServerRequest,
  restore: Restore
) => Effect.Effect<A, E, R>

/**
 * A guard with the middleware's own per-request check: `wrapCall` is `wrap`
 * that also begins the accepted request's call in flight (`end` ends it) and
 * hands on the request it checked.
 *
 * @internal
 */
interface CallGuard extends Guard {
  readonly wrapCall: <A, E, R>(
    onAccept: OnAccept<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<A, E, R>
}

/**
 * The options after validation.
 *
 * @since 0.1.0
 */
export type Resolved = Rules.Resolved

/**
 * Validates options and fills in the defaults.
 *
 * @since 0.1.0
 */
export const resolveOptions = (options?: Options): Effect.Effect<Resolved, GuardConfigError> =>
  Effect.suspend(() => {
    const resolved = Rules.resolveOptions(options)
    return resolved instanceof Rules.GuardConfigError ? Effect.fail(resolved) : Effect.succeed(resolved)
  })

/**
 * The loopback `Host` values accepted by default at a port.
 *
 * @since 0.1.0
 */
export const loopbackHosts = Rules.loopbackHosts

/**
 * The loopback `Origin` values accepted by default at a port.
 *
 * @since 0.1.0
 */
export const loopbackOrigins = Rules.loopbackOrigins

const toRejection = (refusal: Rules.Refusal): Rejection => ({
  ...refusal,
  response: HttpServerResponse.text(refusal.text, {
    status: refusal.status,
    // The body's content type is its own field in Effect's responses.
    headers: Object.fromEntries(Object.entries(refusal.headers).filter(([name]) => name !== "content-type")),
    contentType: "application/json"
  })
})

/**
 * Builds a guard from options, a registry and the port the server listens
 * on (`undefined` when unknown: then the default hosts and origins accept the
 * loopback names at any port).
 *
 * @since 0.1.0
 */
export const makeGuard: (
  options: Options | undefined,
  registry: McpSessionRegistry["Service"],
  port: number | undefined
) => Effect.Effect<Guard, GuardConfigError> = (options, registry, port) => makeCallGuard(options, registry, port)

const makeCallGuard = Effect.fnUntraced(function*(
  options: Options | undefined,
  registry: McpSessionRegistry["Service"],
  port: number | undefined
): Effect.fn.Return<CallGuard, GuardConfigError> {
  const rules = Rules.compile(options, port)
  if (rules instanceof Rules.GuardConfigError) return yield* rules
  const rejections = Object.fromEntries(
    Rules.rejectionKinds.map((kind) => [kind, toRejection(rules.refusals[kind])])
  ) as { readonly [K in RejectionKind]: Rejection }
  const rejectionOf = (refusal: Rules.Refusal): Rejection => rejections[refusal.kind]
  // The memory store answers without a fiber: the lookup then costs no
  // effect of its own (a store across the network goes through `resolve`).
  const sync = SyncLookup.syncLookup(registry)

  // Node's request: its raw header list and the target as sent (Effect's
  // `url` drops an absolute-form target's authority); anything else (a web
  // handler's request) through its headers object.
  const precheck = (request: HttpServerRequest.HttpServerRequest): string | Rules.Refusal => {
    const source = request.source as { readonly rawHeaders?: unknown; readonly url?: unknown } | undefined
    return source !== undefined && Array.isArray(source.rawHeaders) && typeof source.url === "string"
      ? rules.checkRaw(source.url, source.rawHeaders as ReadonlyArray<string>)
      : rules.checkRecord(request.url, request.headers)
  }

  // How a failed lookup is answered: its refusal; a defect (not a bad token)
  // is worth a log line, and is still never a 500.
  const onFailureWith = <A, E, R>(onReject: (rejection: Rejection) => Effect.Effect<A, E, R>) =>
  (cause: Cause.Cause<Rules.LookupFailure>): Effect.Effect<A, E, R> => {
    for (const reason of cause.reasons) {
      if (reason._tag === "Fail") return onReject(rejectionOf(rules.refusalFor(reason.error)))
    }
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    return Effect.andThen(
      Effect.logError("McpBearerAuth: the registry lookup failed; refused with 401", Cause.pretty(cause)),
      onReject(rejections.unverifiable)
    )
  }

  // Built once per route, so a request allocates no closures of its own.
  const wrap = <A, E, R>(
    onAccept: (scope: CredentialScope) => Effect.Effect<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => {
    const outcomes = {
      onFailure: onFailureWith(onReject),
      onSuccess: rules.resolved.requiredCapability === undefined
        ? onAccept
        : (scope: CredentialScope) => {
          const judged = rules.judge(scope)
          return judged === scope ? onAccept(scope) : onReject(rejections["insufficient-capability"])
        }
    }
    return (
      request: HttpServerRequest.HttpServerRequest,
      _searchParams?: Readonly<Record<string, unknown>> | undefined
    ): Effect.Effect<A, E, R> => {
      const checked = precheck(request)
      if (typeof checked !== "string") return onReject(rejectionOf(checked))
      if (sync === undefined) return Effect.matchCauseEffect(registry.resolve(checked), outcomes)
      let found: CredentialScope | Rules.LookupFailure
      try {
        found = sync.lookup(checked)
      } catch (defect) {
        return outcomes.onFailure(Cause.die(defect))
      }
      const judged = rules.judge(found)
      return judged === found ? onAccept(found as CredentialScope) : onReject(rejectionOf(judged as Rules.Refusal))
    }
  }

  // The middleware's check, which also begins the accepted request's call in
  // flight: on the memory store in the same step as the lookup
  // (`lookupCall`), which finds the credential once where a lookup and then
  // `beginCall` would find it twice; elsewhere through `beginCall`.
  // A call is begun and handed to `onAccept` in one uninterruptible region:
  // a fiber interrupted in between (a client gone away) would leave the call
  // in flight for good, and its credential never idle.
  const wrapCall = <A, E, R>(
    onAccept: OnAccept<A, E, R>,
    onReject: (rejection: Rejection) => Effect.Effect<A, E, R>
  ) => {
    const onFailure = onFailureWith(onReject)
    if (sync === undefined) {
      return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<A, E, R> => {
        const checked = precheck(request)
        if (typeof checked !== "string") return onReject(rejectionOf(checked))
        // The lookup crosses the network: it stays interruptible.
        return Effect.uninterruptibleMask((restore) =>
          Effect.matchCauseEffect(restore(registry.resolve(checked)), {
            onFailure,
            onSuccess: (scope) => {
              const judged = rules.judge(scope)
              return judged !== scope
                ? onReject(rejectionOf(judged as Rules.Refusal))
                : Effect.flatMap(registry.beginCall(scope.credentialId), (end) => onAccept(scope, end, request, restore))
            }
          })
        )
      }
    }
    const lookupCall = sync.lookupCall
    return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<A, E, R> => {
      const checked = precheck(request)
      if (typeof checked !== "string") return onReject(rejectionOf(checked))
      return Effect.uninterruptibleMask((restore) => {
        let found: SyncLookup.LookupCall | Rules.LookupFailure
        try {
          found = lookupCall(checked)
        } catch (defect) {
          return onFailure(Cause.die(defect))
        }
        if ("_tag" in found) return onReject(rejectionOf(rules.refusalFor(found)))
        const judged = rules.judge(found.scope)
        if (judged === found.scope) return onAccept(found.scope, found.end, request, restore)
        found.end()
        return onReject(rejectionOf(judged as Rules.Refusal))
      })
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

  return { authenticate, handle, wrap, wrapCall, rejections }
})

/**
 * How the middleware hands an accepted request on.
 *
 * @internal
 */
export interface MiddlewareInternals {
  /**
   * Removes `Origin` from the request the handler sees, once the guard has
   * judged it: for a handler (Effect's MCP transport) that would refuse an
   * origin the guard accepted with an empty-bodied 403 of its own.
   */
  readonly forgetOrigin?: boolean | undefined
}

/**
 * The guard as an `HttpRouter` middleware that provides `CurrentCredential`.
 * Needs `McpSessionRegistry`; reads the bound port from `HttpServer` when
 * there is one.
 *
 * @since 0.1.0
 */
export const middleware = (options?: Options, internals?: MiddlewareInternals) =>
  HttpRouter.middleware<{ provides: CurrentCredential }>()(
    Effect.gen(function*() {
      const registry = yield* McpSessionRegistry
      const server = yield* Effect.serviceOption(HttpServer.HttpServer)
      const port = Option.isSome(server) && server.value.address._tag !== "UnixPathAddress"
        ? server.value.address.port
        : undefined
      const guard = yield* makeCallGuard(options, registry, port)
      const onReject = (rejection: Rejection) => Effect.succeed(rejection.response)
      const forgetOrigin = internals?.forgetOrigin === true
      return (httpEffect) => {
        // `Effect.provideService(effect, key, value)` builds its dual wrapper
        // anew on every call; built once here, as this runs per request.
        const provideCredential = Effect.provideService(CurrentCredential)
        const withCredential = (scope: CredentialScope) => provideCredential(httpEffect, scope)
        // An accepted request is a call in flight until its answer ends, so a
        // long tool call cannot let its credential go idle.
        const check = guard.wrapCall(
          forgetOrigin
            ? (scope, end, request, restore) => {
              const provided = withCredential(scope)
              return InFlight.whileAnswering(
                end,
                request.headers["origin"] === undefined ? provided : Effect.provideService(
                  provided,
                  HttpServerRequest.HttpServerRequest,
                  request.modify({ headers: Headers.remove(request.headers, "origin") })
                ),
                restore
              )
            }
            : (scope, end, _request, restore) => InFlight.whileAnswering(end, withCredential(scope), restore),
          onReject
        )
        return Effect.withFiber((fiber) => check(Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)))
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
