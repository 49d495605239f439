/**
 * The guard as `node:http` / Express / Connect middleware:
 * `(req, res, next)`. It answers every refusal itself, by the rules every
 * guard of this package shares (`rules.ts`), and lets an authenticated
 * request through with its caller on `req.auth`, in the official MCP SDK's
 * `AuthInfo` shape: the SDK's `StreamableHTTPServerTransport` reads
 * `req.auth` and hands it to tool handlers as `extra.authInfo`, where
 * `caller(extra.authInfo)` names the credential, thread and provider session.
 *
 * The call counts as in flight from the lookup until the response closes
 * (`res` "close": sent in full, or the connection gone, even while the lookup
 * was pending), so a credential never goes idle under a long-running tool
 * call, and never stays in flight for a client that left.
 *
 * With no `allowedHosts` or `allowedOrigins`, the defaults are the loopback
 * names at the port each request arrived on (`req.socket.localPort`).
 *
 * @since 0.1.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { CredentialScope } from "../Credential.ts"
import * as SyncLookup from "../internal/syncLookup.ts"
import { type AuthInfo, toAuthInfo } from "./authInfo.ts"
import type { CallLookup, GuardRegistry, Lookup } from "./registry.ts"
import * as Rules from "./rules.ts"

/**
 * What the node guard can be told: the rules' options, and two of its own.
 *
 * @since 0.1.0
 */
export interface Options extends Rules.Options {
  /** The RFC 8707 resource identifier of this server, reported as `AuthInfo.resource`. */
  readonly resource?: URL | undefined
  /**
   * Where a lookup that threw or rejected (a defect, refused with 401
   * `unverifiable`) is reported. Never given the token; a throw from it is
   * ignored. Default `console.error`.
   */
  readonly onError?: ((error: unknown) => void) | undefined
  /**
   * The largest request body the guard reads, in bytes (default 4 MiB). The
   * guard looks the token up only once the body is complete, so a credential
   * revoked while the body was arriving is refused; a larger body is answered
   * 413 (`Content-Length` checked first, a chunked body cut at the limit).
   */
  readonly maxBodySize?: number | undefined
}

/**
 * A request the guard let through: `auth` is its caller.
 *
 * @since 0.1.0
 */
export interface GuardedRequest extends IncomingMessage {
  auth?: AuthInfo | undefined
  /** The parsed JSON body, read by the guard (or by a body parser placed before it). */
  body?: unknown
}

/**
 * The middleware. `next()` runs only for an authenticated request; a refusal
 * is answered and `next` is not called.
 *
 * @since 0.1.0
 */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void

const compileOrThrow = (options: Rules.Options | undefined, port: number | undefined): Rules.Rules => {
  const rules = Rules.compile(options, port)
  if (rules instanceof Rules.GuardConfigError) throw rules
  return rules
}

const isPromiseLike = <A>(value: A | PromiseLike<A>): value is PromiseLike<A> =>
  typeof (value as { then?: unknown } | null)?.then === "function"

const refuse = (res: ServerResponse, refusal: Rules.Refusal): void => {
  res.writeHead(refusal.status, refusal.headers)
  res.end(refusal.text)
}

// A body refused part-way leaves the rest of it on the connection: closed.
const sendBodyRefusal = (res: ServerResponse, refusal: Rules.Refusal): void => {
  res.writeHead(refusal.status, { ...refusal.headers, connection: "close" })
  res.end(refusal.text)
}

// Whether the request carries a body still to be read: none for a bodiless
// request, none once a parser (e.g. express.json() before the guard) set `body`.
const bodyPending = (req: GuardedRequest): boolean => {
  if (req.body !== undefined || req.readableEnded) return false
  const length = req.headers["content-length"]
  if (length !== undefined) return length !== "0"
  return req.headers["transfer-encoding"] !== undefined
}

/**
 * Reads the whole body, bounded, and parses it as JSON into `req.body`; then
 * `done()`. Answers 413 / 400 itself instead.
 */
const readBody = (
  rules: Rules.Rules,
  req: GuardedRequest,
  res: ServerResponse,
  max: number,
  done: () => void
): void => {
  const tooLarge = rules.refusals["body-too-large"]
  const declared = req.headers["content-length"]
  if (declared !== undefined && !(Number(declared) <= max)) return sendBodyRefusal(res, tooLarge)
  const chunks: Array<Buffer> = []
  let size = 0
  let over = false
  const onData = (chunk: Buffer) => {
    if (over) return
    size += chunk.length
    if (size > max) {
      over = true
      chunks.length = 0
      req.off("data", onData)
      req.off("end", onEnd)
      sendBodyRefusal(res, tooLarge)
      req.resume()
      return
    }
    chunks.push(chunk)
  }
  const onEnd = () => {
    // An empty body (chunked, or `Content-Length: 00`) is no body, as
    // `Content-Length: 0` is: not a parse error.
    if (size === 0) return done()
    const text = Buffer.concat(chunks, size).toString("utf8")
    try {
      req.body = JSON.parse(text)
    } catch {
      return sendBodyRefusal(res, rules.refusals["parse-error"])
    }
    done()
  }
  req.on("data", onData)
  req.on("end", onEnd)
}

const defaultOnError = (error: unknown) => {
  console.error("mcp-session-registry guard: the registry lookup failed; refused with 401", error)
}

/**
 * Builds the middleware over a registry (`createRegistry()` from
 * `mcp-session-registry/promise`, or `fromService` over an Effect one).
 * Throws `GuardConfigError` for options that cannot work.
 *
 * ```ts
 * const registry = await createRegistry()
 * app.use("/mcp", nodeGuard(registry))
 * ```
 *
 * @since 0.1.0
 */
export const nodeGuard = (registry: GuardRegistry, options?: Options): Middleware => {
  const fixed = compileOrThrow(options, undefined)
  const perPort = options?.allowedHosts === undefined || options.allowedOrigins === undefined
  const byPort = new Map<number, Rules.Rules>()
  let lastPort: number | undefined
  let lastRules = fixed
  // The defaults depend on the port a request arrived on; a server has few,
  // so their rules are compiled once each.
  const rulesFor = (req: IncomingMessage): Rules.Rules => {
    if (!perPort) return fixed
    const port = req.socket.localPort
    if (port === lastPort) return lastRules
    if (port === undefined) return fixed
    let rules = byPort.get(port)
    if (rules === undefined) byPort.set(port, rules = compileOrThrow(options, port))
    lastPort = port
    lastRules = rules
    return rules
  }
  const resource = options?.resource
  const lookupCall = registry.lookupCall
  const isLive = SyncLookup.liveCheck(registry)
  const onError = options?.onError ?? defaultOnError
  const maxBodySize = options?.maxBodySize ?? Rules.defaultMaxBodySize

  const admit = (
    rules: Rules.Rules,
    token: string,
    scope: CredentialScope,
    end: () => void,
    req: GuardedRequest,
    res: ServerResponse,
    next: (error?: unknown) => void
  ): void => {
    const judged = rules.judge(scope)
    if (judged !== scope) {
      end()
      return refuse(res, judged as Rules.Refusal)
    }
    req.auth = toAuthInfo(scope, token, resource)
    // A response that closed while the lookup was pending (the client left
    // during a remote store's round trip) will not say so again: its call is
    // over now, or it would stay in flight and the credential never go idle.
    if (res.closed) end()
    else res.on("close", end)
    next()
  }

  const settle = (
    rules: Rules.Rules,
    token: string,
    outcome: CallLookup,
    req: GuardedRequest,
    res: ServerResponse,
    next: (error?: unknown) => void
  ): void =>
    "_tag" in outcome
      ? refuse(res, rules.refusalFor(outcome))
      : admit(rules, token, outcome.scope, outcome.end, req, res, next)

  // A registry without `lookupCall`: the lookup, then `beginCall`.
  const settleLookup = (
    rules: Rules.Rules,
    token: string,
    outcome: Lookup,
    req: GuardedRequest,
    res: ServerResponse,
    next: (error?: unknown) => void
  ): void =>
    "_tag" in outcome
      ? refuse(res, rules.refusalFor(outcome))
      : admit(rules, token, outcome, registry.beginCall(outcome.credentialId), req, res, next)

  const fail = (rules: Rules.Rules, res: ServerResponse, error: unknown): void => {
    try {
      onError(error)
    } catch {
      // A failing reporter must not escape the guard: thrown from the
      // middleware or a lookup's Promise, it would crash a node:http server.
    }
    refuse(res, rules.refusals.unverifiable)
  }

  return (req, res, next) => {
    const rules = rulesFor(req)
    // Express strips a mount path from `url`; `originalUrl` is the target as sent.
    const target = (req as { readonly originalUrl?: string }).originalUrl ?? req.url ?? "/"
    const checked = rules.checkRaw(target, req.rawHeaders)
    if (typeof checked !== "string") return refuse(res, checked)
    // The lookup waits for the whole body: a credential revoked while the body
    // was arriving must not run the request.
    if (bodyPending(req)) {
      if (isLive === undefined || isLive(checked)) {
        return readBody(rules, req, res, maxBodySize, () => resolve(rules, checked, req, res, next))
      }
      // A token that is not live is refused before its body is read, so only
      // a credential's holder can make the server take one in. The refusal
      // closes the connection: left open, Node would read and discard the
      // unread body for as long as the client sends it.
      res.setHeader("connection", "close")
      return resolve(rules, checked, req, res, (error?: unknown) => {
        // Only a wall clock stepped back between the two reads gets here: the
        // body is read, bounded, as for any live token.
        if (error !== undefined) return next(error)
        res.removeHeader("connection")
        readBody(rules, req, res, maxBodySize, next)
      })
    }
    resolve(rules, checked, req, res, next)
  }

  function resolve(rules: Rules.Rules, checked: string, req: GuardedRequest, res: ServerResponse, next: (error?: unknown) => void): void {
    if (lookupCall !== undefined) {
      let found: CallLookup | PromiseLike<CallLookup>
      try {
        found = lookupCall(checked)
      } catch (error) {
        return fail(rules, res, error)
      }
      if (!isPromiseLike(found)) return settle(rules, checked, found, req, res, next)
      found.then(
        (outcome) => settle(rules, checked, outcome, req, res, next),
        (error: unknown) => fail(rules, res, error)
      )
      return
    }
    let found: Lookup | PromiseLike<Lookup>
    try {
      found = registry.lookup(checked)
    } catch (error) {
      return fail(rules, res, error)
    }
    if (!isPromiseLike(found)) return settleLookup(rules, checked, found, req, res, next)
    found.then(
      (outcome) => settleLookup(rules, checked, outcome, req, res, next),
      (error: unknown) => fail(rules, res, error)
    )
  }
}
