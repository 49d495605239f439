/**
 * The guard for Web-standard servers (Hono, Bun, Deno, Next.js and other
 * route handlers): a `Request` in; a `Response` refusal or the caller out.
 * The rules, statuses and bodies are those every guard of this package
 * shares (`rules.ts`).
 *
 * `check` only authenticates: the lookup is a use, and nothing is in flight
 * after it. `handle` also runs the handler and counts the call in flight
 * until its response body has been sent in full or cancelled, so a
 * credential never goes idle under a long-running tool call or stream.
 *
 * A Web request's URL is absolute: its authority is judged as well as the
 * `Host` header. Given `@hono/node-server`'s bindings (`NodeBindings`) of
 * the very request it made, the guard judges the Node request behind it
 * instead, as `nodeGuard` would; any other `Request` (one a middleware
 * rebuilt, a sub-request) is judged by itself. Without
 * `allowedHosts`/`allowedOrigins`, the defaults are the loopback names at
 * `port` (any port when no `port` is given).
 *
 * @since 0.1.0
 */
import type { CredentialScope } from "../Credential.ts"
import * as SyncLookup from "../internal/syncLookup.ts"
import { type AuthInfo, toAuthInfo } from "./authInfo.ts"
import type { CallLookup, GuardRegistry, Lookup } from "./registry.ts"
import * as Rules from "./rules.ts"

/**
 * What the Web guard can be told.
 *
 * @since 0.1.0
 */
export interface Options extends Rules.Options {
  /** The port the server listens on, for the default allow-lists. */
  readonly port?: number | undefined
  /** The RFC 8707 resource identifier of this server, reported as `AuthInfo.resource`. */
  readonly resource?: URL | undefined
  /**
   * Where a lookup that threw or rejected (a defect, refused with 401
   * `unverifiable`) is reported. Never given the token. Default `console.error`.
   */
  readonly onError?: ((error: unknown) => void) | undefined
  /**
   * The largest request body `handle` reads before the lookup, in bytes
   * (default 4 MiB); a larger one is answered 413.
   */
  readonly maxBodySize?: number | undefined
}

/**
 * An authenticated request's caller.
 *
 * @since 0.1.0
 */
export interface Caller {
  /** The credential, as the lookup left it (expiry slid by this use). */
  readonly credential: CredentialScope
  /**
   * The same in the official MCP SDK's `AuthInfo` shape: pass it to
   * `WebStandardStreamableHTTPServerTransport.handleRequest(request, { authInfo })`.
   */
  readonly authInfo: AuthInfo
}

/**
 * The Node request behind a Web one, where the server has it:
 * `@hono/node-server` hands it to the fetch callback as the second argument,
 * which Hono exposes as `c.env` (`{ incoming, outgoing }`). Given it, the
 * guard reads Node's raw header list and request target, as `nodeGuard`
 * does, instead of the Web `Headers` that `@hono/node-server` would build
 * for the purpose: the same rules on the same bytes, for less work.
 *
 * They must be the request's own: the guard uses them only for the
 * `Request` that `@hono/node-server` built from `incoming`, its headers
 * untouched, and judges any other `Request` (one rebuilt by a middleware, a
 * sub-request passed on with the outer request's `c.env`) by its own URL and
 * headers, and ends its call with its response body.
 *
 * @since 0.1.0
 */
export interface NodeBindings {
  readonly incoming?: {
    readonly rawHeaders?: ReadonlyArray<string>
    readonly url?: string | undefined
    readonly httpVersionMajor?: number
  } | undefined
  /** The Node response: `handle` ends the call when it closes. */
  readonly outgoing?: {
    readonly on?: (event: "close", listener: () => void) => unknown
    /** Node's `closed`: the response has closed (sent, or the connection gone). */
    readonly closed?: boolean | undefined
  } | undefined
}

/**
 * The built guard.
 *
 * @since 0.1.0
 */
export interface WebGuard {
  /**
   * The caller, or the refusal to send. A plain value where the registry
   * answers synchronously (memory), a Promise where it cannot: `await` it.
   * On `@hono/node-server`, pass its bindings (`c.env`) too.
   */
  readonly check: (request: Request, node?: NodeBindings | undefined) => Caller | Response | Promise<Caller | Response>
  /**
   * `check`, then `handler` for an authenticated request, with the call in
   * flight until the handler's response body has ended. The token is looked
   * up once the body is in: read by `handle` (bounded by `maxBodySize`), or
   * already, by a middleware before it (then `request` is passed on as it
   * is). On
   * `@hono/node-server`, pass its bindings (`c.env`) too: the call then ends
   * when the Node response closes.
   */
  readonly handle: (
    request: Request,
    handler: (request: Request, caller: Caller) => Response | Promise<Response>,
    node?: NodeBindings | undefined
  ) => Promise<Response>
}

// A caller and the end of its call.
interface CallerCall {
  readonly caller: Caller
  readonly end: () => void
}

const isPromiseLike = <A>(value: A | PromiseLike<A>): value is PromiseLike<A> =>
  typeof (value as { then?: unknown } | null)?.then === "function"

const responseOf = (refusal: Rules.Refusal): Response =>
  new Response(refusal.text, { status: refusal.status, headers: refusal.headers })

// The whole body, at most `max` bytes (Content-Length checked first), or the 413.
const readBounded = async (request: Request, max: number, tooLarge: Rules.Refusal): Promise<Uint8Array | Response> => {
  const declared = request.headers.get("content-length")
  if (declared !== null && !(Number(declared) <= max)) return responseOf(tooLarge)
  const reader = request.body!.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  while (true) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > max) {
      void reader.cancel().catch(() => {})
      return responseOf(tooLarge)
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return bytes
}

// Whether `incoming` is the Node request that `request` was built from, and
// says all the Web request does. `@hono/node-server` keeps the Node request
// under a Symbol of its own on the request it hands over, and builds the Web
// headers from it only when asked (they are a Symbol's value then too). So:
// some own Symbol holds `incoming` itself, and none holds Headers (which a
// middleware may have edited). Any other Request, such as one rebuilt with
// other headers or a sub-request given the outer request's bindings, fails
// this and is judged by itself.
const scannedFrom = (request: Request, incoming: object): boolean => {
  const symbols = Object.getOwnPropertySymbols(request)
  let found = false
  for (let i = 0; i < symbols.length; i++) {
    const value = (request as unknown as Record<symbol, unknown>)[symbols[i]!]
    if (value === incoming) found = true
    else if (value instanceof Headers) return false
  }
  return found
}

// The two Symbols themselves, per prototype (one copy of the server package),
// or `null` where they cannot be told apart. Listing a request's Symbols
// costs more than the rest of its check, on every request.
interface Keys {
  readonly incoming: symbol
  readonly headers: symbol
}
const keysByPrototype = new WeakMap<object, Keys | null>()

// The one Symbol of `request` that holds `incoming`, and the one a request of
// the same prototype sets to Headers when asked for them. They are asked of a
// stand-in on an empty Node request, so no request served has its headers
// built for it, and a request whose headers a middleware built already
// teaches as well as any. `undefined` when this request tells nothing (no
// single Symbol holds `incoming`): a later one may. `null` when the prototype
// does not behave as expected (no single Symbol is set, anything throws): the
// scan then serves its requests for good.
const learnKeys = (request: Request, prototype: object, incoming: object): Keys | null | undefined => {
  try {
    const held = request as unknown as Record<symbol, unknown>
    const holding = Object.getOwnPropertySymbols(request).filter((symbol) => held[symbol] === incoming)
    if (holding.length !== 1) return undefined
    const standIn = Object.create(prototype) as Record<symbol, unknown> & { readonly headers: unknown }
    standIn[holding[0]!] = { headers: {}, rawHeaders: [], url: "/", method: "GET", httpVersionMajor: 1 }
    void standIn.headers
    const added = Object.getOwnPropertySymbols(standIn).filter((symbol) => symbol !== holding[0])
    return added.length === 1 && standIn[added[0]!] instanceof Headers ? { incoming: holding[0]!, headers: added[0]! } : null
  } catch {
    return null
  }
}

// What `scannedFrom` tells, read off the learnt Symbols where the request's
// prototype has them: `incoming` under the one, nothing yet under the other.
const builtFrom = (request: Request, incoming: object): boolean => {
  const prototype = Object.getPrototypeOf(request) as object | null
  if (prototype === null) return scannedFrom(request, incoming)
  const keys = keysByPrototype.get(prototype)
  if (keys !== undefined && keys !== null) {
    const held = request as unknown as Record<symbol, unknown>
    return held[keys.incoming] === incoming && held[keys.headers] === undefined
  }
  const clean = scannedFrom(request, incoming)
  if (keys === undefined) {
    const learnt = learnKeys(request, prototype, incoming)
    if (learnt !== undefined) keysByPrototype.set(prototype, learnt)
  }
  return clean
}

const defaultOnError = (error: unknown) => {
  console.error("mcp-session-registry guard: the registry lookup failed; refused with 401", error)
}

// The response with its body passed through a stream that ends the call
// when the body ends, fails or is cancelled by the client.
const endingWith = (response: Response, end: () => void): Response => {
  const body = response.body
  if (body === null) {
    end()
    return response
  }
  const reader = body.getReader()
  const tracked = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          end()
          controller.close()
        } else {
          controller.enqueue(value)
        }
      } catch (error) {
        end()
        controller.error(error)
      }
    },
    cancel(reason) {
      end()
      return reader.cancel(reason)
    }
  })
  return new Response(tracked, { status: response.status, statusText: response.statusText, headers: response.headers })
}

/**
 * Builds the Web guard over a registry (`createRegistry()` from
 * `mcp-session-registry/promise`, or `fromService` over an Effect one).
 * Throws `GuardConfigError` for options that cannot work.
 *
 * ```ts
 * const guard = webGuard(registry, { port: 3000 })
 * app.all("/mcp", (c) => guard.handle(c.req.raw, (request, { authInfo }) =>
 *   transport.handleRequest(request, { authInfo })))
 * ```
 *
 * @since 0.1.0
 */
export const webGuard = (registry: GuardRegistry, options?: Options): WebGuard => {
  const rules = Rules.compile(options, options?.port)
  if (rules instanceof Rules.GuardConfigError) throw rules
  const resource = options?.resource
  const lookupCall = registry.lookupCall
  const isLive = SyncLookup.liveCheck(registry)
  const onError = options?.onError ?? defaultOnError
  const maxBodySize = options?.maxBodySize ?? Rules.defaultMaxBodySize

  const admit = (token: string, outcome: Lookup): Caller | Response => {
    const judged = rules.judge(outcome)
    if (judged !== outcome) return responseOf(judged as Rules.Refusal)
    const credential = judged as CredentialScope
    return { credential, authInfo: toAuthInfo(credential, token, resource) }
  }

  const fail = (error: unknown): Response => {
    try {
      onError(error)
    } catch {
      // A failing reporter must not turn the refusal into a 500.
    }
    return responseOf(rules.refusals.unverifiable)
  }

  // The bindings, when they are this request's own (`builtFrom`).
  const own = (request: Request, node: NodeBindings | undefined): NodeBindings | undefined => {
    const incoming = node?.incoming
    return incoming !== undefined && incoming !== null && builtFrom(request, incoming) ? node : undefined
  }

  // The request's headers and target: Node's raw ones when the server handed
  // over the HTTP/1 request this one was built from (as McpBearerAuth reads
  // its request's source), else the Web request's own (HTTP/2 names its host
  // `:authority`, which the Web request has turned into its URL and Host).
  const precheck = (request: Request, node: NodeBindings | undefined): string | Rules.Refusal => {
    const incoming = node?.incoming
    return incoming !== undefined && incoming.httpVersionMajor === 1 && Array.isArray(incoming.rawHeaders) &&
        typeof incoming.url === "string"
      ? rules.checkRaw(incoming.url, incoming.rawHeaders)
      : rules.checkWeb(request.url, request.headers)
  }

  const check = (request: Request, node?: NodeBindings): Caller | Response | Promise<Caller | Response> => {
    const checked = precheck(request, own(request, node))
    if (typeof checked !== "string") return responseOf(checked)
    let found: Lookup | PromiseLike<Lookup>
    try {
      found = registry.lookup(checked)
    } catch (error) {
      return fail(error)
    }
    if (!isPromiseLike(found)) return admit(checked, found)
    return Promise.resolve(found).then((outcome) => admit(checked, outcome), fail)
  }

  // The lookup and `beginCall` in one step, for a registry that has `lookupCall`.
  const lookupCalling = (token: string): CallerCall | Response | Promise<CallerCall | Response> => {
    const settle = (outcome: CallLookup): CallerCall | Response => {
      if ("_tag" in outcome) return responseOf(rules.refusalFor(outcome))
      const judged = rules.judge(outcome.scope)
      if (judged !== outcome.scope) {
        outcome.end()
        return responseOf(judged as Rules.Refusal)
      }
      return { caller: { credential: outcome.scope, authInfo: toAuthInfo(outcome.scope, token, resource) }, end: outcome.end }
    }
    let found: CallLookup | PromiseLike<CallLookup>
    try {
      found = lookupCall!(token)
    } catch (error) {
      return fail(error)
    }
    return isPromiseLike(found) ? Promise.resolve(found).then(settle, fail) : settle(found)
  }

  const handle = async (
    request: Request,
    handler: (request: Request, caller: Caller) => Response | Promise<Response>,
    node?: NodeBindings
  ): Promise<Response> => {
    node = own(request, node)
    // The headers first: a request they refuse is answered before its body
    // is read.
    const checked = precheck(request, node)
    if (typeof checked !== "string") return responseOf(checked)
    // The lookup waits for the whole body: a credential revoked while the body
    // was arriving must not run the request. (GET and HEAD have none; asking
    // would make some servers build the request's body stream for nothing.)
    // A body a middleware read already cannot be read again (that would
    // throw, a 500); the middlewares that do, such as Hono's `c.req.json()`,
    // read it in full. A token that is not live now is refused before the
    // body is read, so only a credential's holder can make the server take
    // one in.
    if (
      request.method !== "GET" && request.method !== "HEAD" && !request.bodyUsed && request.body !== null &&
      (isLive === undefined || isLive(checked))
    ) {
      const read = await readBounded(request, maxBodySize, rules.refusals["body-too-large"])
      if (read instanceof Response) return read
      request = new Request(request.url, { method: request.method, headers: request.headers, body: read, signal: request.signal })
    }
    let caller: Caller
    let end: () => void
    if (lookupCall !== undefined) {
      const found = await lookupCalling(checked)
      if (found instanceof Response) return found
      caller = found.caller
      end = found.end
    } else {
      let found: Lookup | PromiseLike<Lookup>
      try {
        found = registry.lookup(checked)
      } catch (error) {
        return fail(error)
      }
      const admitted = isPromiseLike(found) ? await Promise.resolve(found).then((outcome) => admit(checked, outcome), fail) : admit(checked, found)
      if (admitted instanceof Response) return admitted
      caller = admitted
      end = registry.beginCall(caller.credential.credentialId)
    }
    // The Node response, where the server handed it over, says when the
    // answer is over (sent in full, or the connection gone) for one listener;
    // else the body is passed through a stream that tells. A response that
    // closed already (the client left while its body arrived) will not say
    // so again, and nobody will read the body: the call ends with the handler.
    const outgoing = node?.outgoing
    const onClose = outgoing !== undefined && typeof outgoing.on === "function"
    const closed = onClose && outgoing.closed === true
    if (onClose && !closed) outgoing.on!("close", end)
    let response: Response
    try {
      response = await handler(request, caller)
    } catch (error) {
      end()
      throw error
    }
    if (!onClose) {
      try {
        return endingWith(response, end)
      } catch (error) {
        // Not a Response, or its body locked already: a host's bug that fails
        // the request, and must not leave its call in flight for good.
        end()
        throw error
      }
    }
    if (closed) end()
    return response
  }

  return { check, handle }
}
