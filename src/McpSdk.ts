/**
 * An adapter for the official MCP TypeScript SDK (`@modelcontextprotocol/sdk`):
 * a token verifier for its `requireBearerAuth` middleware, so an Express (or
 * any Node) MCP server built on the SDK authenticates agent CLIs through the
 * registry.
 *
 * A live token becomes the SDK's `AuthInfo`, which tool handlers read as
 * `extra.authInfo`; every refusal becomes the SDK's `InvalidTokenError`, so the
 * middleware answers 401 with `WWW-Authenticate: Bearer error="invalid_token",
 * error_description="..."` (the reason, never the token) and never a 500.
 *
 * A store that cannot answer (`StoreUnavailable`: Redis down or frozen) must
 * not read as a bad token: a 401 makes an MCP client drop the server for the
 * rest of its session. `requireBearerAuth` cannot answer 503 (it sends 401
 * for `InvalidTokenError`, 403 for `InsufficientScopeError`, 500 for
 * `ServerError` and anything that is not an `OAuthError`, 400 for every other
 * `OAuthError`), so the verifier throws the SDK's
 * `TemporarilyUnavailableError`: a 400 with the OAuth error code
 * `temporarily_unavailable`, the RFC 6749 code for exactly this, and no
 * challenge. A host that needs a real 503 puts the registry's own guard in
 * front instead.
 *
 * The SDK's code is Promise based while the registry is an Effect service, so
 * the verifier needs something to run the registry's effects with. Two ways:
 *
 * - inside an Effect program, `yield* McpSdk.tokenVerifier()` captures the
 *   current context (the registry, and the `Clock`, logger and tracer in
 *   effect, so a `TestClock` drives it);
 * - from plain Promise code, `McpSdk.tokenVerifierFromRegistry(registry)` takes
 *   the registry `createRegistry` built (`mcp-session-registry/promise`) and
 *   looks tokens up without a fiber on the memory store;
 *   `McpSdk.tokenVerifierFromRuntime(runtime)` runs on any `ManagedRuntime`
 *   that provides the registry.
 *
 * Calls in flight: the verifier sees only the token, at the start of a
 * request, never the request's end, so on its own a tool call longer than
 * `idleTimeout` can let its credential go idle. Put `McpSdk.callsInFlight()`
 * (or `callsInFlightFromRuntime`, `callsInFlightFromRegistry`) after
 * `requireBearerAuth`: it reads
 * `req.auth` and keeps the call in flight until the response finishes or its
 * connection closes, which for the SDK's streamed (SSE) answers is when the
 * stream ends. What neither can see: work a tool goes on doing after its
 * response ended, and a GET stream the client keeps open for server
 * notifications, which counts as one long call (bounded by `maxLifetime`).
 *
 * When the token is judged: when `requireBearerAuth` asks, and never again.
 * Put the body parser (`express.json()`) before it, so that is once the
 * whole body is in and a credential revoked while the body was arriving is
 * refused 401; with `requireBearerAuth` first, the token is judged at the
 * headers and a body that arrives after a revoke still runs.
 *
 * Import it from `mcp-session-registry/mcp-sdk`; the SDK is an optional peer
 * dependency needed only by this module.
 *
 * @since 0.1.0
 */
import { InvalidTokenError, TemporarilyUnavailableError } from "@modelcontextprotocol/sdk/server/auth/errors.js"
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js"
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import type { CredentialScope } from "./Credential.ts"
import { InvalidCredential } from "./Credential.ts"
import * as GuardAuthInfo from "./guard/authInfo.ts"
import * as SyncLookup from "./internal/syncLookup.ts"
import { McpSessionRegistry, StoreUnavailable } from "./McpSessionRegistry.ts"
import type { Registry } from "./promise/Registry.ts"

/**
 * Options for the verifier.
 *
 * @since 0.1.0
 */
export interface VerifierOptions {
  /**
   * The RFC 8707 resource identifier of this MCP server, reported as
   * `AuthInfo.resource`; set it when `requireBearerAuth` is given an
   * `expectedResource`, which it compares with this value.
   */
  readonly resource?: URL | undefined
}

/**
 * What `AuthInfo.extra` holds for a credential of this registry.
 *
 * @since 0.1.0
 */
export type AuthInfoExtra = GuardAuthInfo.AuthInfoExtra

/**
 * The `error_description` of a refusal that is not about the token itself
 * (a defect, an interrupted or disposed runtime): still a 401, never a 500.
 *
 * @since 0.1.0
 */
export const unverifiableDescription = "the bearer token could not be verified"

/**
 * The `error_description` sent with `temporarily_unavailable` when the
 * registry's store cannot answer.
 *
 * @since 0.1.0
 */
export const storeUnavailableDescription = "the credential store is unavailable; retry shortly"

/**
 * Maps a resolved credential to the SDK's `AuthInfo`.
 *
 * `clientId` is the provider instance, `scopes` are the capabilities, and
 * `expiresAt` is the credential's (sliding) expiry in epoch seconds, rounded
 * down. The SDK requires the `token` field; it is kept non-enumerable so that
 * logging or serializing the `AuthInfo` does not print it.
 *
 * `requireBearerAuth` compares `expiresAt` with `Date.now()`, so a registry
 * driven by a `TestClock` must have its clock set near the wall clock.
 *
 * @since 0.1.0
 */
export const toAuthInfo = (scope: CredentialScope, token: string, options?: VerifierOptions): AuthInfo =>
  GuardAuthInfo.toAuthInfo(scope, token, options?.resource)

/**
 * Who is calling, from the `AuthInfo` a tool handler receives as
 * `extra.authInfo`; `undefined` when the request was not authenticated by
 * this adapter.
 *
 * ```ts
 * server.registerTool("whoami", {}, async (extra) => {
 *   const caller = McpSdk.caller(extra.authInfo)
 *   ...
 * })
 * ```
 *
 * @since 0.1.0
 */
export const caller = (authInfo: AuthInfo | undefined): AuthInfoExtra | undefined => GuardAuthInfo.caller(authInfo)

type Outcome = AuthInfo | InvalidTokenError | TemporarilyUnavailableError

// Never fails: a refusal is a value, and a defect is logged and turned into a
// refusal, so nothing that reaches the SDK can become a 500.
const authenticate = (token: string, options: VerifierOptions | undefined): Effect.Effect<Outcome, never, McpSessionRegistry> =>
  McpSessionRegistry.use((registry) => registry.resolve(token)).pipe(
    Effect.map((scope): Outcome => toAuthInfo(scope, token, options)),
    Effect.catchTag("InvalidCredential", (error) => Effect.succeed<Outcome>(new InvalidTokenError(error.description))),
    Effect.catchTag("StoreUnavailable", (error) =>
      Effect.as(
        Effect.logWarning("Bearer token verification: the credential store is unavailable", error.message),
        new TemporarilyUnavailableError(storeUnavailableDescription)
      )),
    Effect.catchCause((cause) =>
      Effect.as(
        Effect.logError("Bearer token verification failed", Cause.pretty(cause)),
        new InvalidTokenError(unverifiableDescription)
      )
    )
  )

const make = (
  run: (effect: Effect.Effect<Outcome, never, McpSessionRegistry>) => Promise<Exit.Exit<Outcome, unknown>>,
  options: VerifierOptions | undefined
): OAuthTokenVerifier => ({
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    let exit: Exit.Exit<Outcome, unknown>
    try {
      exit = await run(authenticate(token, options))
    } catch {
      throw new InvalidTokenError(unverifiableDescription)
    }
    if (Exit.isFailure(exit)) throw new InvalidTokenError(unverifiableDescription)
    if (exit.value instanceof InvalidTokenError || exit.value instanceof TemporarilyUnavailableError) throw exit.value
    return exit.value
  }
})

/**
 * A verifier for `requireBearerAuth` that runs the registry's effects with the
 * current context: the registry, and the `Clock`, logger and tracer in effect
 * where this is run.
 *
 * ```ts
 * const verifier = yield* McpSdk.tokenVerifier()
 * app.use("/mcp", requireBearerAuth({ verifier }), mcpHandler)
 * ```
 *
 * @since 0.1.0
 */
export const tokenVerifier = (options?: VerifierOptions): Effect.Effect<OAuthTokenVerifier, never, McpSessionRegistry> =>
  Effect.map(Effect.context<McpSessionRegistry>(), (context) => fromContext(context, options))

/**
 * A verifier that runs the registry's effects with the given context.
 *
 * @since 0.1.0
 */
export const fromContext = (context: Context.Context<McpSessionRegistry>, options?: VerifierOptions): OAuthTokenVerifier =>
  make(Effect.runPromiseExitWith(context), options)

/**
 * A verifier for plain Promise code, running on a `ManagedRuntime` that
 * provides the registry. Build the runtime once and share it with the code
 * that issues and revokes credentials, so they all see the same registry.
 *
 * ```ts
 * const runtime = ManagedRuntime.make(McpSessionRegistry.layer())
 * app.use("/mcp", requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRuntime(runtime) }), mcpHandler)
 * ```
 *
 * A disposed runtime or a layer that failed to build refuses every token
 * (401) rather than failing the request with a 500.
 *
 * @since 0.1.0
 */
export const tokenVerifierFromRuntime = <E>(
  runtime: ManagedRuntime.ManagedRuntime<McpSessionRegistry, E>,
  options?: VerifierOptions
): OAuthTokenVerifier => make((effect) => runtime.runPromiseExit(effect), options)

/**
 * A verifier for the registry `createRegistry` built
 * (`mcp-session-registry/promise`): the same `AuthInfo` and the same refusals
 * as the other verifiers. On the memory store the lookup is a plain call, no
 * fiber; on Redis it is one round trip.
 *
 * ```ts
 * const registry = await createRegistry()
 * app.use("/mcp", requireBearerAuth({ verifier: McpSdk.tokenVerifierFromRegistry(registry) }), mcpHandler)
 * ```
 *
 * A closed registry refuses every token (401 on the memory store, `temporarily_unavailable` on Redis).
 *
 * @since 0.1.0
 */
export const tokenVerifierFromRegistry = (
  registry: Pick<Registry, "lookup">,
  options?: VerifierOptions
): OAuthTokenVerifier => ({
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    let found: CredentialScope | InvalidCredential | StoreUnavailable
    try {
      found = await registry.lookup(token)
    } catch (cause) {
      // `lookup` never throws; anything else that stands in for the registry might.
      Effect.runFork(Effect.logError("Bearer token verification failed", cause))
      throw new InvalidTokenError(unverifiableDescription)
    }
    if (found instanceof InvalidCredential) throw new InvalidTokenError(found.description)
    if (found instanceof StoreUnavailable) {
      Effect.runFork(Effect.logWarning("Bearer token verification: the credential store is unavailable", found.message))
      throw new TemporarilyUnavailableError(storeUnavailableDescription)
    }
    return toAuthInfo(found, token, options)
  }
})

/**
 * A Node (Express, Connect) middleware that keeps a request in flight, as
 * `McpSessionRegistry.beginCall` describes, from `requireBearerAuth` to the
 * end of its response.
 *
 * @since 0.1.0
 */
export type CallsInFlight = (
  req: IncomingMessage & { readonly auth?: AuthInfo | undefined },
  res: ServerResponse,
  next: (error?: unknown) => void
) => void

const trackCalls = (begin: (credentialId: string) => (() => void) | Promise<() => void>): CallsInFlight => (req, res, next) => {
  const credentialId = caller(req.auth)?.credentialId
  if (credentialId !== undefined) {
    // A response that closed already (the client left while the token was
    // being verified, a remote store's round trip) will not say so again: its
    // call ends as soon as it begins, or it would stay in flight for good.
    let over = res.closed
    let end: (() => void) | undefined
    const finish = () => {
      over = true
      end?.()
    }
    // `close` follows `finish`, and comes alone when the client went away.
    res.once("finish", finish)
    res.once("close", finish)
    try {
      const begun = begin(credentialId)
      if (typeof begun === "function") {
        end = begun
        if (over) begun()
      } else {
        begun.then((ended) => {
          end = ended
          if (over) ended()
        }, () => {})
      }
    } catch {
      // Tracking is best effort: a request is never failed for it.
    }
  }
  next()
}

/**
 * `callsInFlight` for the registry of the current context. Place it after
 * `requireBearerAuth` with a verifier of this module.
 *
 * ```ts
 * const verifier = yield* McpSdk.tokenVerifier()
 * const inFlight = yield* McpSdk.callsInFlight()
 * app.post("/mcp", requireBearerAuth({ verifier }), inFlight, mcpHandler)
 * ```
 *
 * @since 0.1.0
 */
export const callsInFlight = (): Effect.Effect<CallsInFlight, never, McpSessionRegistry> =>
  Effect.map(Effect.context<McpSessionRegistry>(), (context) => {
    const registry = Context.get(context, McpSessionRegistry)
    const sync = SyncLookup.syncLookup(registry)
    return trackCalls(sync !== undefined ? sync.beginCall : (id) => Effect.runPromiseWith(context)(registry.beginCall(id)))
  })

/**
 * `callsInFlight` for the registry of a `ManagedRuntime`, for plain Promise code.
 *
 * @since 0.1.0
 */
export const callsInFlightFromRuntime = <E>(
  runtime: ManagedRuntime.ManagedRuntime<McpSessionRegistry, E>
): CallsInFlight =>
  trackCalls((credentialId) => runtime.runPromise(McpSessionRegistry.use((registry) => registry.beginCall(credentialId))))

/**
 * `callsInFlight` for the registry `createRegistry` built
 * (`mcp-session-registry/promise`).
 *
 * @since 0.1.0
 */
export const callsInFlightFromRegistry = (registry: Pick<Registry, "beginCall">): CallsInFlight =>
  trackCalls((credentialId) => registry.beginCall(credentialId))
