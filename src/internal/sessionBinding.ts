/**
 * An MCP session belongs to the credential that opened it, and ends when that
 * credential leaves the registry.
 *
 * Effect's MCP transport hands out an `Mcp-Session-Id` at `initialize` and
 * accepts it from anyone afterwards. Behind the guard every request is
 * authenticated, but another agent's credential must still not reach into a
 * session it did not open (to end it with a DELETE, or to answer its
 * requests): such a request gets a 404 "Session not found".
 *
 * The transport keeps a session until a DELETE, and an agent whose credential
 * was revoked never sends one; so when a credential leaves the registry, every
 * session it opened loses its binding at once and is ended in the transport
 * here, as its DELETE would have ended it. A session with no request in
 * flight is ended at once; one with requests in flight is ended when the last
 * of them finishes (a streamed answer when its body ends, not when it
 * starts), or after a grace period at the latest (the DELETE then
 * interrupts what still runs): a tool that revokes its own credential, or its
 * own thread, still answers its caller. No tombstone is needed to keep the
 * session from being taken over: a request reaches the transport only with a
 * session id bound to its own credential, so an ended, deleted or
 * never-issued id gets the same 404 from everyone.
 *
 * The transport's DELETE route is the only way to end a session, so a
 * transport that offers none fails the server at startup (`ready`), not
 * silently at the first revocation.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { CurrentCredential } from "../McpBearerAuth.ts"
import { McpSessionRegistry } from "../McpSessionRegistry.ts"
import { randomBase64Url } from "./entropy.ts"
import * as McpRequest from "./mcpRequest.ts"

const sessionHeader = "mcp-session-id"

/**
 * How long a revoked credential's session may keep serving the requests in
 * flight when it was revoked, before it is ended in the transport anyway. The
 * same as the registry's default hook timeout: the registry does not expose
 * its configured one, and a call blocked past this must not keep the session
 * alive for ever.
 */
export const defaultGracePeriod: Duration.Input = Duration.seconds(5)

/** How many MCP sessions one credential may hold at once, by default. */
export const defaultMaxSessionsPerCredential = 16

/** How many MCP sessions the endpoint holds at once, by default. */
export const defaultMaxSessions = 1024

/** How long an MCP session may go unused before it is ended, by default. */
export const defaultSessionIdleTimeout: Duration.Input = Duration.minutes(30)

const notFound = HttpServerResponse.text(
  JSON.stringify({
    jsonrpc: "2.0",
    id: null,
    error: { code: -32001, message: "Session not found", data: { reason: "session-not-found", error: "not_found" } }
  }),
  { status: 404, contentType: "application/json", headers: { "cache-control": "no-store" } }
)

/**
 * The MCP transport offers no way to end a session from the server side: it
 * registered no DELETE route at the endpoint (an Effect upgrade may have
 * changed how it registers its routes), or its DELETE route does not end
 * sessions. Without one, every session of a revoked credential would stay
 * open in the transport, so the server refuses to start.
 *
 * @since 0.1.0
 */
export class SessionTerminationError extends Schema.TaggedError<SessionTerminationError>()(
  "SessionTerminationError",
  {
    path: Schema.String,
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Cannot end MCP sessions at ${this.path} from the server side: ${this.detail}; ` +
      "the sessions of revoked credentials would stay open in the transport"
  }
}

/** The sessions one credential opened. */
interface Holder {
  readonly credentialId: string
  readonly sessions: Set<string>
  /** The credential left the registry: a session it opens from now on is ended at once. */
  gone: boolean
  /** Initializes admitted and not yet answered: they count toward the limits. */
  pending: number
}

/** A route's handler, as the transport's DELETE route is captured. */
export type RouteHandler = (
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>

/**
 * A test seam, read once per `make`: receives each binding made, so tests can
 * look at its size and ask the transport about a session.
 */
export const Inspect = Context.Reference<((binding: SessionBinding) => void) | undefined>(
  "mcp-session-registry/internal/sessionBinding/Inspect",
  { defaultValue: () => undefined }
)

/**
 * A test seam, read once per `make`: stands in for the transport's DELETE
 * route at the endpoint, as registered through `HttpRouter.add`. Receives the
 * transport's handler and answers the one to register in its place, or
 * `undefined` to register none, so tests can play a transport that offers no
 * DELETE route, or a slow one.
 *
 * @internal
 */
export const TransportDelete = Context.Reference<((handler: RouteHandler) => RouteHandler | undefined) | undefined>(
  "mcp-session-registry/internal/sessionBinding/TransportDelete",
  { defaultValue: () => undefined }
)

/**
 * The binding of one MCP endpoint: `middleware` for its routes (inside the
 * guard, whose `CurrentCredential` it reads) and `layerRouter` under the
 * transport, which hands the transport's own DELETE handler to the binding.
 */
export interface SessionBinding {
  readonly middleware: HttpRouter.Middleware<{
    provides: never
    handles: never
    error: never
    requires: never
    layerError: never
    layerRequires: never
  }>
  readonly layerRouter: Layer.Layer<HttpRouter.HttpRouter, never, HttpRouter.HttpRouter>
  /**
   * Ends a session in the transport as a DELETE would. Answers the
   * transport's status: 204 if it held the session, 404 if not.
   */
  readonly endInTransport: (sessionId: string) => Effect.Effect<number>
  /** How many sessions are bound, and how many live credentials that opened (or tried to) are tracked. */
  readonly size: () => { readonly sessions: number; readonly credentials: number }
  /** How many unbound sessions wait for their in-flight requests before they are ended in the transport. */
  readonly draining: () => number
  /** Waits until every session the binding is ending has been ended in the transport (grace periods included). */
  readonly settled: Effect.Effect<void>
  /**
   * Fails unless the transport's DELETE route was captured and ends sessions.
   * Run it once the transport's routes are registered, before serving.
   */
  readonly ready: Effect.Effect<void, SessionTerminationError>
}

/** Options of `make`. */
export interface Options {
  /** How long an in-flight request may delay the end of its revoked session. Default `defaultGracePeriod`. */
  readonly gracePeriod?: Duration.Input | undefined
  /** The bounds of a POST body. Default `McpRequest.defaultLimits`. */
  readonly limits?: McpRequest.Limits | undefined
  /** Default `defaultMaxSessionsPerCredential`. */
  readonly maxSessionsPerCredential?: number | undefined
  /** Default `defaultMaxSessions`. */
  readonly maxSessions?: number | undefined
  /** Default `defaultSessionIdleTimeout`. */
  readonly sessionIdleTimeout?: Duration.Input | undefined
  /**
   * The answer to a request whose credential left the registry while its
   * body was arriving: what the guard answers that token now. Default a bare
   * 401 with a JSON-RPC body.
   */
  readonly refuse?: ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>) | undefined
}

const unauthorized = HttpServerResponse.text(
  JSON.stringify({
    jsonrpc: "2.0",
    id: null,
    error: { code: -32001, message: "Unauthorized", data: { reason: "revoked", error: "invalid_token" } }
  }),
  { status: 401, contentType: "application/json", headers: { "cache-control": "no-store" } }
)

const notFoundPath = McpRequest.refusal("not-found")
const transportRefused = McpRequest.refusal("transport-refused")

// What the transport refuses at the HTTP level, each by its own status, whose
// headers (such as a 405's `Allow`) it keeps.
const byStatus: ReadonlyMap<number, HttpServerResponse.HttpServerResponse> = new Map([
  [405, McpRequest.refusal("method-not-allowed")],
  [406, McpRequest.refusal("not-acceptable")],
  [415, McpRequest.refusal("unsupported-media-type")]
])

// Effect's transport answers some refusals with an empty body: a 400 for a
// call it finds no session for (every batch element, whatever the header
// says), a 404 for a session it has just ended (a call cut off when the
// revocation grace ran out), a 405 for a GET, a 406 or 415 for the wrong
// Accept or Content-Type. A client can show none of them, so each gets the
// JSON-RPC body (and the `Cache-Control`) every other refusal of this server
// carries.
const withBody = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400 || response.body._tag !== "Empty") return response
  if (response.status === 404) return notFound
  if (response.status === 400) return transportRefused
  const refusal = byStatus.get(response.status) ?? transportRefused
  return HttpServerResponse.setHeader(HttpServerResponse.setBody(response, refusal.body), "cache-control", "no-store")
}
const credentialSessionLimit = McpRequest.refusal("credential-session-limit")
const sessionLimit = McpRequest.refusal("session-limit")

// A `;` in the path is a parameter to some servers and a query separator to
// Effect's router, which would serve `/mcp;access_token=...` as `/mcp`: no
// such path is the endpoint.
const hasPathParameter = (url: string): boolean => {
  const semicolon = url.indexOf(";")
  if (semicolon === -1) return false
  const query = url.indexOf("?")
  return query === -1 || semicolon < query
}

/**
 * Makes the binding for the MCP endpoint at `path`; its revocation hook lives
 * as long as the scope.
 */
export const make = Effect.fnUntraced(function*(
  path: HttpRouter.PathInput,
  options?: Options
): Effect.fn.Return<SessionBinding, never, McpSessionRegistry | Scope.Scope> {
  const registry = yield* McpSessionRegistry
  const clock = yield* Clock.Clock
  const gracePeriod = Duration.fromInputUnsafe(options?.gracePeriod ?? defaultGracePeriod)
  const limits = options?.limits ?? McpRequest.defaultLimits
  const maxPerCredential = options?.maxSessionsPerCredential ?? defaultMaxSessionsPerCredential
  const maxSessions = options?.maxSessions ?? defaultMaxSessions
  const idleMillis = Duration.toMillis(Duration.fromInputUnsafe(options?.sessionIdleTimeout ?? defaultSessionIdleTimeout))
  const refuse = options?.refuse ?? (() => Effect.succeed(unauthorized))
  const owners = new Map<string, Holder>()
  const holders = new Map<string, Holder>()
  // Requests past the binding, per bound session: counted so a revoked
  // session is ended only once its last request has answered.
  const inFlight = new Map<string, number>()
  // Unbound sessions of revoked credentials, waiting for their in-flight
  // requests; each holds the timer that ends it at the latest.
  const draining = new Map<string, Fiber.Fiber<void>>()
  // Initializes admitted and not yet answered, over all credentials.
  let pendingTotal = 0
  // When each bound session was last used (its last request began or ended),
  // and the timer that ends it once it has gone unused for `idleMillis`.
  const lastUsed = new Map<string, number>()
  const idleTimers = new Map<string, Fiber.Fiber<void>>()
  // The transport is ended for a session in a fiber of the layer's own, never
  // in the revocation hook or a request: the registry skips a hook for the
  // rest of a batch once it times out, and a request must not be cut short by
  // the end of its own session. Forks synchronously, so the hook does its
  // bookkeeping in one step and returns at once.
  const ending = yield* FiberSet.make<void, never>()
  const fork = yield* FiberSet.runtime(ending)<never>()
  // Idle timers run for a session's whole life: kept apart from `ending`, so
  // `settled` waits for sessions being ended, not for every session open.
  const watching = yield* FiberSet.make<void, never>()
  const forkWatch = yield* FiberSet.runtime(watching)<never>()
  const standIn = yield* TransportDelete
  let deleteRoute: RouteHandler | undefined
  let warned = false

  // The transport offers no way to end a session from the server side but
  // its DELETE route, so the route's handler is taken as the transport
  // registers it, below every middleware: the same handling a DELETE gets,
  // without the guard or this binding in the way.
  const toHandler = (handler: unknown): RouteHandler =>
    HttpServerResponse.isHttpServerResponse(handler)
      ? () => Effect.succeed(handler)
      : Effect.isEffect(handler)
      ? (request) =>
        Effect.provideService(
          handler as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>,
          HttpServerRequest.HttpServerRequest,
          request
        )
      : handler as RouteHandler
  // Captures the DELETE handler, and answers the one to register: the
  // transport's own, or the test seam's stand-in (`undefined`: none).
  const capture = <H>(handler: H): H | RouteHandler | undefined => {
    if (standIn === undefined) {
      deleteRoute = toHandler(handler)
      return handler
    }
    return deleteRoute = standIn(toHandler(handler))
  }
  const layerRouter = Layer.effect(
    HttpRouter.HttpRouter,
    Effect.map(HttpRouter.HttpRouter, (router) =>
      HttpRouter.HttpRouter.of({
        ...router,
        add: (method, routePath, handler, options) => {
          if (method !== "DELETE" || routePath !== path) return router.add(method, routePath, handler, options)
          const registered = capture(handler)
          return registered === undefined
            ? Effect.void
            : router.add(method, routePath, registered as typeof handler, options)
        },
        // The 4.1 transport registers through `add`; a route added in bulk is
        // captured as it is, and the test seam does not reach it.
        addAll: (routes) => {
          for (const route of routes) {
            if (route.method === "DELETE" && route.path === path) deleteRoute = toHandler(route.handler)
          }
          return router.addAll(routes)
        }
      }))
  )

  const endInTransport = (sessionId: string): Effect.Effect<number> =>
    Effect.suspend(() => {
      const handler = deleteRoute
      // Ruled out by `ready` where the binding is wired as the server wires
      // it; kept for a binding used without that check.
      if (handler === undefined) {
        if (warned) return Effect.succeed(0)
        warned = true
        return Effect.as(
          Effect.logWarning("The MCP transport registered no DELETE route; sessions of revoked credentials stay in it"),
          0
        )
      }
      // Only the session header: the transport then checks the session alone,
      // against the revision it negotiated.
      const request = HttpServerRequest.fromWeb(
        new Request(new URL(path, "http://localhost"), { method: "DELETE", headers: { [sessionHeader]: sessionId } })
      )
      return Effect.map(handler(request), (response) => response.status)
    }).pipe(
      Effect.catchCause((cause) =>
        Effect.as(Effect.logWarning("Ending an MCP session in the transport failed", cause), 500)
      )
    )

  const stopWatching = (sessionId: string) => {
    lastUsed.delete(sessionId)
    const timer = idleTimers.get(sessionId)
    if (timer === undefined) return
    idleTimers.delete(sessionId)
    timer.interruptUnsafe()
  }

  // Ends a bound session once it has gone unused for `idleMillis`, as its
  // DELETE would: a request in flight is a use that lasts until it ends. On
  // the Clock, so a TestClock drives it.
  const watch = (sessionId: string) => {
    lastUsed.set(sessionId, clock.currentTimeMillisUnsafe())
    const check: Effect.Effect<void> = Effect.suspend(() => {
      const now = clock.currentTimeMillisUnsafe()
      const left = inFlight.has(sessionId) ? idleMillis : (lastUsed.get(sessionId) ?? now) + idleMillis - now
      if (left > 0) return Effect.andThen(Effect.sleep(Duration.millis(left)), check)
      // Out of the map first, so unbinding does not interrupt this very timer.
      idleTimers.delete(sessionId)
      unbind(sessionId)
      return Effect.asVoid(endInTransport(sessionId))
    })
    idleTimers.set(sessionId, forkWatch(check))
  }

  const bind = (sessionId: string, holder: Holder) => {
    owners.set(sessionId, holder)
    holder.sessions.add(sessionId)
    watch(sessionId)
  }
  const unbind = (sessionId: string) => {
    const holder = owners.get(sessionId)
    if (holder === undefined) return
    owners.delete(sessionId)
    holder.sessions.delete(sessionId)
    stopWatching(sessionId)
  }

  // Ends an unbound session in the transport, or, while requests of it are
  // in flight, once the last of them exits (see `exit`), or when the grace
  // period runs out (on the Clock, so a TestClock drives it), whichever
  // comes first. Never waits: the work runs in the layer's fibers.
  const end = (sessionId: string) => {
    if (!inFlight.has(sessionId)) {
      fork(endInTransport(sessionId))
      return
    }
    if (draining.has(sessionId)) return
    draining.set(
      sessionId,
      fork(Effect.andThen(
        Effect.sleep(gracePeriod),
        Effect.suspend(() => {
          // Taken out first: the DELETE interrupts the requests still in
          // flight, and their exits must not end the session a second time.
          draining.delete(sessionId)
          return endInTransport(sessionId)
        })
      ))
    )
  }

  // Ends a draining session now, if `timer` still stands for it.
  const finish = (sessionId: string, timer: Fiber.Fiber<void>) => {
    if (draining.get(sessionId) !== timer) return
    draining.delete(sessionId)
    timer.interruptUnsafe()
    fork(endInTransport(sessionId))
  }

  // A request passed the binding for a bound session; runs `exit` however it
  // ends, interrupted or failed included. `context` is the request's while
  // its answer is still to be sent (the session then ends once it is), none
  // once nothing more of it is (it failed, or its streamed body ended).
  const enter = (sessionId: string) => inFlight.set(sessionId, (inFlight.get(sessionId) ?? 0) + 1)
  const exit = (sessionId: string, context: Context.Context<never> | undefined) => {
    if (lastUsed.has(sessionId)) lastUsed.set(sessionId, clock.currentTimeMillisUnsafe())
    const count = (inFlight.get(sessionId) ?? 1) - 1
    if (count > 0) {
      inFlight.set(sessionId, count)
      return
    }
    inFlight.delete(sessionId)
    const timer = draining.get(sessionId)
    if (timer === undefined) return
    if (context === undefined) return finish(sessionId, timer)
    // The transport checks, in a pre-response handler of its own, that the
    // session still stands, and answers an empty 404 if not: the session is
    // ended only in one appended after it, once the answer is through. The
    // timer stays as the backstop should no response ever be sent.
    HttpEffect.appendPreResponseHandlerUnsafe(context, (_, response) =>
      Effect.sync(() => {
        finish(sessionId, timer)
        return response
      }))
  }

  // A streamed answer (the transport's SSE, as for a tool call that sends a
  // notification before its result) is sent while the call still runs: the
  // request stays in flight until its body ends, not when it starts. Should
  // the body never run (the response replaced before it is sent, or the
  // client gone first), the request's scope, closed once the response is
  // through or abandoned, lets it go instead; whichever comes first, once.
  const untilStreamed = (
    sessionId: string,
    response: HttpServerResponse.HttpServerResponse,
    body: HttpBody.Stream
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
    Effect.withFiber((fiber) => {
      let left = false
      const leave = Effect.sync(() => {
        if (left) return
        left = true
        exit(sessionId, undefined)
      })
      return Effect.as(
        Scope.addFinalizer(Context.getUnsafe(fiber.context, Scope.Scope), leave),
        HttpServerResponse.setBody(
          response,
          HttpBody.stream(Stream.onExit(body.stream, () => leave), body.contentType, body.contentLength)
        )
      )
    })

  // Marks the holder of a credential that left the registry, drops it and
  // its bindings, and ends its sessions in the transport (see `end`). All of
  // it synchronous: the revocation hook never waits.
  const retire = (holder: Holder): void => {
    if (holders.get(holder.credentialId) === holder) holders.delete(holder.credentialId)
    holder.gone = true
    if (holder.sessions.size === 0) return
    const sessions = Array.from(holder.sessions)
    holder.sessions.clear()
    for (const sessionId of sessions) {
      owners.delete(sessionId)
      stopWatching(sessionId)
      end(sessionId)
    }
  }

  // A holder leaves only with its credential, never when its last session
  // does: an initialize in flight holds on to it, and must still see `gone`
  // if the credential leaves before the session it opens is bound.
  yield* registry.onRevoke((event) =>
    Effect.sync(() => {
      const holder = holders.get(event.credential.credentialId)
      if (holder !== undefined) retire(holder)
    })
  )

  // The request past the body's checks: bound to its session, or, without
  // one, a POST that may open a session (`initialize`: admitted within the
  // limits first).
  const dispatch = <E, R>(
    httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
    fiber: Fiber.Fiber<unknown, unknown>,
    request: HttpServerRequest.HttpServerRequest,
    credentialId: string,
    checked: McpRequest.Checked
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> => {
    const sessionId = request.headers[sessionHeader]
    if (sessionId !== undefined) {
      const owner = owners.get(sessionId)
      if (owner === undefined || owner.credentialId !== credentialId) return Effect.succeed(notFound)
      // Counted from here, while the session is bound: a revocation from
      // now on waits for this request before ending the session.
      // Counted and its exit registered in one uninterruptible step, so no
      // interruption can leave the count up for ever.
      const counted = Effect.uninterruptibleMask((restore) => {
        enter(sessionId)
        return Effect.matchCauseEffect(restore(httpEffect), {
          onFailure: (cause) => {
            exit(sessionId, undefined)
            return Effect.failCause(cause)
          },
          onSuccess: (response) => {
            if (response.body._tag === "Stream") return untilStreamed(sessionId, response, response.body)
            exit(sessionId, fiber.context)
            return Effect.succeed(response)
          }
        })
      })
      if (request.method !== "DELETE") return counted
      return Effect.tap(counted, (response) =>
        Effect.sync(() => {
          if (response.status < 300) unbind(sessionId)
        }))
    }
    if (request.method !== "POST") return httpEffect
    // Taken before the transport runs, so a revocation while the
    // initialize is in flight marks this very holder. One that lands
    // between the guard's lookup and this line finds no holder to mark, and
    // this line then makes a fresh one for a dead credential: the registry
    // is asked again below, before anything is bound to it.
    let holder = holders.get(credentialId)
    if (holder === undefined) {
      holders.set(credentialId, holder = { credentialId, sessions: new Set(), gone: false, pending: 0 })
    }
    const opener = holder
    // An initialize is admitted while the credential and the endpoint hold
    // fewer sessions than they may, counting those still being opened; its
    // place is held until its answer is through or abandoned.
    let release: (() => void) | undefined
    let hold: Effect.Effect<void> = Effect.void
    if (checked.initialize) {
      const id = checked.initializeId
      if (opener.sessions.size + opener.pending >= maxPerCredential) {
        return Effect.succeed(
          id === undefined ? credentialSessionLimit : McpRequest.refusal("credential-session-limit", false, id)
        )
      }
      if (owners.size + pendingTotal >= maxSessions) {
        return Effect.succeed(id === undefined ? sessionLimit : McpRequest.refusal("session-limit", false, id))
      }
      opener.pending++
      pendingTotal++
      let held = true
      release = () => {
        if (!held) return
        held = false
        opener.pending--
        pendingTotal--
      }
      hold = Scope.addFinalizer(Context.getUnsafe(fiber.context, Scope.Scope), Effect.sync(release))
    }
    // The transport sets the session header in a pre-response handler of
    // its own; one appended after the handler ran sees it. A session is
    // bound, or else ended: the transport keeps no session nobody can reach.
    const settle = (response: HttpServerResponse.HttpServerResponse) => {
      release?.()
      const opened = response.headers[sessionHeader]
      if (opened === undefined) return Effect.succeed(response)
      if (response.status < 300 && !opener.gone) {
        bind(opened, opener)
        return Effect.succeed(response)
      }
      return Effect.as(endInTransport(opened), response)
    }
    // The registry is asked once the holder is tracked: a credential live
    // then leaves through the hook, which finds this holder; one already
    // gone has its holder retired here, as the hook would have done, and
    // the session it opened is ended, not bound. A sessionless POST is an
    // initialize or a refusal, so this O(1) read is paid per session, not
    // per call; asking when nothing opened too drops a dead credential's
    // fresh holder, which nothing else would.
    return Effect.andThen(hold, Effect.onExit(httpEffect, () =>
      Effect.sync(() =>
        HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_, response) =>
          opener.gone ? settle(response) : Effect.flatMap(
            // A store that cannot answer keeps the session bound: the guard
            // has just accepted this credential, and a revocation made
            // elsewhere still ends it through the hook.
            registry.get(credentialId).pipe(
              Effect.map(Option.isSome),
              Effect.catchTag("StoreUnavailable", () => Effect.succeed(true))
            ),
            (live) =>
              live
                ? settle(response)
                : Effect.andThen(Effect.sync(() => retire(opener)), () => settle(response))
          ))
      )))
  }

  // Whether the credential is still in the registry once a body has arrived:
  // the guard looked it up when the headers did. A store that cannot answer
  // leaves the answer to the guard's own lookup, as for a fresh request.
  const isLive = (credentialId: string): Effect.Effect<boolean> =>
    registry.get(credentialId).pipe(
      Effect.map(Option.isSome),
      Effect.catch(() => Effect.succeed(false))
    )

  const middleware = HttpRouter.middleware<{ provides: never }>()((httpEffect) =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      const credentialId = Context.getUnsafe(fiber.context as Context.Context<CurrentCredential>, CurrentCredential)
        .credentialId
      if (hasPathParameter(request.url)) return Effect.succeed(notFoundPath)
      // Appended once the request is through, so it runs after the
      // transport's own pre-response handlers, which set those empty refusals.
      const answered = <E, R>(dispatched: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
        Effect.onExit(dispatched, () =>
          Effect.sync(() =>
            HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_, response) => Effect.succeed(withBody(response)))
          ))
      if (request.method !== "POST") return answered(dispatch(httpEffect, fiber, request, credentialId, McpRequest.noInitialize))
      // The whole body is read and checked before anything counts the request
      // in flight; a credential that left the registry meanwhile gets what a
      // fresh request with its token gets, and nothing is dispatched.
      return Effect.flatMap(McpRequest.read(request, limits), (checked) =>
        HttpServerResponse.isHttpServerResponse(checked)
          ? Effect.succeed(checked)
          : Effect.flatMap(isLive(credentialId), (live) =>
            live ? answered(dispatch(httpEffect, fiber, request, credentialId, checked)) : refuse(request)))
    })
  )

  // The transport registers its routes as its own layer is built, after the
  // router this binding hands it, so whether its DELETE route was captured is
  // known only then: `ready` runs right after, before the server serves. It
  // also asks the route to end a session nobody opened (a random id, so
  // never a live one): a route that ends sessions answers 404, one that
  // cannot answers otherwise (405 when the transport was told not to end
  // sessions), and then no revocation could end one either.
  const ready = Effect.suspend(() => {
    if (deleteRoute === undefined) {
      return Effect.fail(
        new SessionTerminationError({ path, detail: "the MCP transport registered no DELETE route" })
      )
    }
    return Effect.flatMap(endInTransport(`probe-${randomBase64Url(16)}`), (status) =>
      status === 404 ? Effect.void : Effect.fail(
        new SessionTerminationError({
          path,
          detail: `the transport's DELETE route answered ${status} for an unknown session, not 404`
        })
      ))
  })

  const binding: SessionBinding = {
    middleware,
    layerRouter,
    endInTransport,
    size: () => ({ sessions: owners.size, credentials: holders.size }),
    draining: () => draining.size,
    settled: FiberSet.awaitEmpty(ending),
    ready
  }
  const inspect = yield* Inspect
  inspect?.(binding)
  return binding
})
