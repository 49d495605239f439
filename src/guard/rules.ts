/**
 * The guard's rules, once, for every framework: which requests reach the
 * registry, and what every refusal looks like on the wire.
 *
 * `McpBearerAuth` (Effect's HTTP server), `NodeGuard` (node:http, Express,
 * Connect) and `WebGuard` (Hono, Bun, Deno, route handlers) all compile their
 * options with `compile` and ask the same `Rules` about each request; they
 * differ only in how they read a request and send a `Refusal`. The checks, in
 * order, before any handler runs:
 *
 * 1. exactly one `Host` header, else 400 (RFC 9112 §3.2);
 * 2. the `Host` is on the allow-list, and so is the authority of an
 *    absolute-form target (`POST http://evil.example/mcp`, RFC 9112 §3.2.2),
 *    else 403: a page that reached the server through DNS rebinding gets
 *    nothing (MCP SDK advisory GHSA-w48q-cv73-mx4w);
 * 3. `Origin`, when sent, is on the allow-list (compared case-insensitively),
 *    else 403;
 * 4. at most one `Authorization` header, else 400;
 * 5. no `access_token` in the query string (400), and nothing shaped like a
 *    token (`BearerToken.pattern`) anywhere in the target, path, `;params` or
 *    query, raw or percent-decoded (400): a token in a URL ends up in logs and
 *    histories, so it is never accepted;
 * 6. `Authorization: Bearer <token>`, else 401; the token then goes to the
 *    registry, whose outcome `judge` turns into the caller or a refusal (401
 *    with an RFC 6750 challenge, 503 when the store cannot answer, 403 when
 *    the credential lacks the route's `requiredCapability`).
 *
 * Every refusal is built once per guard, as plain data (status, headers, body
 * text), and none echoes the presented token. The per-request cost is one
 * pass over the raw headers and a few string tests, with no allocation.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { pattern as tokenPattern, prefix as tokenPrefix } from "../BearerToken.ts"
import type { CredentialScope, InvalidReason } from "../Credential.ts"
import { descriptions as invalidDescriptions, InvalidReason as InvalidReasonSchema } from "../Credential.ts"

/**
 * What a guard can be told.
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
   * bound to (at any port when the guard cannot know the port).
   */
  readonly allowedHosts?: ReadonlyArray<string> | "*" | undefined
  /**
   * Accepted `Origin` header values, like `http://localhost:3000` (compared
   * case-insensitively). A request without `Origin` (every non-browser
   * client) is not affected. `"*"` accepts any origin. Default: the default
   * hosts over `http` and `https`.
   */
  readonly allowedOrigins?: ReadonlyArray<string> | "*" | undefined
  /**
   * A capability the credential must hold (see `IssueRequest.capabilities`)
   * for the guarded routes. Give each route its own guard to require
   * different capabilities. Default none.
   */
  readonly requiredCapability?: string | undefined
}

/**
 * A guard option that cannot work, such as a realm with a line break or a
 * resource metadata URL that is not an absolute http(s) URL.
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
 * Why a guard refused a request:
 *
 * - `duplicate-host`: more than one `Host` header (400);
 * - `host`, `origin`: outside the allow-list (403); `host` also covers a
 *   missing `Host` and an absolute-form target naming another host;
 * - `duplicate-authorization`: more than one `Authorization` header (400);
 * - `query-token`: an `access_token` in the query string (400);
 * - `target-token`: something shaped like a token in the target's path,
 *   `;params` or query (400);
 * - `no-credentials`: no `Authorization` header (401, challenge without `error`);
 * - `scheme`: an `Authorization` scheme other than `Bearer` (401, `invalid_token`);
 * - `body-too-large`: a body past `maxBodySize` (413), and `parse-error`: a
 *   body that is not JSON (400, JSON-RPC code -32700); only from the guards
 *   that read the body before the lookup (`nodeGuard`; `webGuard.handle`
 *   sends `body-too-large` only, as it hands the bytes on unparsed);
 * - an `InvalidReason` from the registry: the token was refused (401, `invalid_token`);
 * - `unverifiable`: the registry lookup itself died (for instance while the
 *   registry shuts down); logged, and refused like a bad token (401);
 * - `insufficient-capability`: the credential lacks `requiredCapability` (403);
 * - `store-unavailable`: the registry's store could not answer
 *   (`StoreUnavailable`): 503 with `Retry-After: 1`, no challenge, never 401.
 *
 * @since 0.1.0
 */
export type RejectionKind =
  | "duplicate-host"
  | "host"
  | "origin"
  | "duplicate-authorization"
  | "query-token"
  | "target-token"
  | "no-credentials"
  | "scheme"
  | "body-too-large"
  | "parse-error"
  | InvalidReason
  | "unverifiable"
  | "insufficient-capability"
  | "store-unavailable"

/**
 * The body of every refusal: a JSON-RPC 2.0 error response with `id: null`.
 *
 * `data.reason` is the `RejectionKind`; `data.error` is always there, an
 * OAuth-style error code:
 *
 * - `invalid_request` for every 400 and the 413, and for `no-credentials`
 *   (RFC 6750 §3.1; its challenge still carries no `error`, as §3.1 asks);
 * - `invalid_token` for the other 401s;
 * - `insufficient_scope` for `insufficient-capability`;
 * - `forbidden` for the `host` and `origin` 403s (not an RFC 6750 code: the
 *   request never got as far as its token);
 * - `temporarily_unavailable` for the 503 (RFC 6749 §4.1.2.1).
 *
 * @since 0.1.0
 */
export interface JsonRpcErrorBody {
  readonly jsonrpc: "2.0"
  readonly id: null
  readonly error: {
    readonly code: number
    readonly message: string
    readonly data: { readonly reason: RejectionKind; readonly error: string }
  }
}

/**
 * The JSON-RPC error codes of refusals, from the implementation-defined server
 * range: `unauthorized` for 401, `forbidden` for 403, `unavailable` for 503;
 * a 400 and the 413 use JSON-RPC's own "Invalid Request", a body that is not
 * JSON its "Parse error".
 *
 * @since 0.1.0
 */
export const jsonRpcErrorCodes = {
  parseError: -32700,
  badRequest: -32600,
  unauthorized: -32001,
  forbidden: -32003,
  unavailable: -32004
} as const

/**
 * A refusal as plain data, built once per guard: what every framework needs
 * to send it.
 *
 * @since 0.1.0
 */
export interface Refusal {
  readonly kind: RejectionKind
  readonly status: 400 | 401 | 403 | 413 | 503
  /**
   * The `WWW-Authenticate` header value, for 401, `insufficient_scope` and
   * the 400s about the request's headers or target.
   */
  readonly wwwAuthenticate: string | undefined
  /** The JSON-RPC error object sent as the body. */
  readonly body: JsonRpcErrorBody
  /** `body` as the JSON text sent. */
  readonly text: string
  /**
   * Every header to send, lower-case: `content-type`, `cache-control`, and
   * `www-authenticate` or `retry-after` where they apply.
   */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * The options after validation.
 *
 * @since 0.1.0
 */
export interface Resolved {
  readonly realm: string
  readonly resourceMetadataUrl: string | undefined
  /** `undefined`: the loopback names at the guard's port (any port when that is unknown). */
  readonly allowedHosts: ReadonlySet<string> | "*" | undefined
  readonly allowedOrigins: ReadonlySet<string> | "*" | undefined
  readonly requiredCapability: string | undefined
}

/**
 * The failure a registry lookup can report as a value: the token was refused,
 * or the store could not answer. Matched by `_tag`, so any error class of
 * that shape works (`InvalidCredential`, `StoreUnavailable`).
 *
 * @since 0.1.0
 */
export type LookupFailure =
  | { readonly _tag: "InvalidCredential"; readonly reason: InvalidReason }
  | { readonly _tag: "StoreUnavailable" }

/**
 * A guard's compiled rules.
 *
 * @since 0.1.0
 */
export interface Rules {
  readonly resolved: Resolved
  /** Every refusal this guard can send, by kind. */
  readonly refusals: { readonly [K in RejectionKind]: Refusal }
  /**
   * Checks a request given Node's raw header list (`IncomingMessage.rawHeaders`,
   * names and values alternating) and its request target as sent
   * (`IncomingMessage.url`): the token to resolve, or the refusal.
   */
  readonly checkRaw: (target: string, rawHeaders: ReadonlyArray<string>) => string | Refusal
  /**
   * The same from a headers object with lower-case names (Node's
   * `IncomingMessage.headers`, Effect's `Headers`), where a repeated header is
   * either dropped or joined with `, `.
   */
  readonly checkRecord: (target: string, headers: Readonly<Record<string, unknown>>) => string | Refusal
  /**
   * The same from a Web `Request`'s parts: its absolute `url`, whose
   * authority is judged as an absolute-form target's, and its `Headers`.
   */
  readonly checkWeb: (url: string, headers: { get(name: string): string | null }) => string | Refusal
  /**
   * The caller, or the refusal, for what the registry answered: a failure
   * becomes its 401 or 503; a live credential without the route's
   * `requiredCapability` becomes the 403.
   */
  readonly judge: (outcome: CredentialScope | LookupFailure) => CredentialScope | Refusal
  /** The refusal for a failed lookup. */
  readonly refusalFor: (failure: LookupFailure) => Refusal
}

const loopbackNames = ["localhost", "127.0.0.1", "[::1]"] as const

const descriptions: Record<Exclude<RejectionKind, InvalidReason>, string> = {
  "duplicate-host": "more than one Host header was sent",
  "host": "the Host header is not allowed",
  "origin": "the Origin header is not allowed",
  "duplicate-authorization": "more than one Authorization header was sent",
  "query-token": "bearer tokens are not accepted in the query string; send an Authorization header",
  "target-token": "bearer tokens are not accepted in the request URL; send an Authorization header",
  "no-credentials": "no bearer token was presented",
  "scheme": "the Authorization scheme must be Bearer",
  "body-too-large": "the request body exceeds maxBodySize",
  "parse-error": "the body is not JSON",
  "unverifiable": "the bearer token could not be verified",
  "insufficient-capability": "the credential lacks a capability this endpoint requires",
  "store-unavailable": "the credential store is unavailable; retry shortly"
}

/**
 * Every `RejectionKind`, in the order of the checks.
 *
 * @since 0.1.0
 */
export const rejectionKinds: ReadonlyArray<RejectionKind> = [
  "duplicate-host",
  "host",
  "origin",
  "duplicate-authorization",
  "query-token",
  "target-token",
  "no-credentials",
  "scheme",
  "body-too-large",
  "parse-error",
  ...InvalidReasonSchema.literals,
  "unverifiable",
  "insufficient-capability",
  "store-unavailable"
]

// Header values are built once, so an unusable option must fail here rather
// than make a server throw (a 500) on the first refusal: Node refuses control
// characters and anything above U+00FF in a header, so only printable ASCII
// passes (an international host or URL is written in its ASCII form).
const unprintable = /[^\x20-\x7e]/

const quote = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`

const checkText = (option: string, value: unknown): string | GuardConfigError =>
  typeof value !== "string" || value.length === 0
    ? new GuardConfigError({ option, detail: "must be a non-empty string" })
    : unprintable.test(value)
    ? new GuardConfigError({ option, detail: "must be printable ASCII (no control or non-ASCII characters)" })
    : value

const checkList = (
  option: string,
  value: ReadonlyArray<string> | "*" | undefined
): ReadonlySet<string> | "*" | undefined | GuardConfigError => {
  if (value === undefined || value === "*") return value
  if (!Array.isArray(value)) return new GuardConfigError({ option, detail: `must be an array of strings or "*"` })
  const entries: Array<string> = []
  for (const entry of value) {
    const checked = checkText(option, entry)
    if (typeof checked !== "string") return checked
    entries.push(checked)
  }
  return entries.includes("*") ? "*" : new Set(entries.map((entry) => entry.toLowerCase()))
}

/**
 * Validates options and fills in the defaults.
 *
 * @since 0.1.0
 */
export const resolveOptions = (options: Options = {}): Resolved | GuardConfigError => {
  const realm = checkText("realm", options.realm ?? "mcp")
  if (typeof realm !== "string") return realm
  let resourceMetadataUrl: string | undefined
  if (options.resourceMetadataUrl !== undefined) {
    const checked = checkText("resourceMetadataUrl", options.resourceMetadataUrl)
    if (typeof checked !== "string") return checked
    const url = URL.parse(checked)
    if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) {
      return new GuardConfigError({ option: "resourceMetadataUrl", detail: "must be an absolute http(s) URL" })
    }
    resourceMetadataUrl = checked
  }
  let requiredCapability: string | undefined
  if (options.requiredCapability !== undefined) {
    const checked = checkText("requiredCapability", options.requiredCapability)
    if (typeof checked !== "string") return checked
    requiredCapability = checked
  }
  const allowedHosts = checkList("allowedHosts", options.allowedHosts)
  if (allowedHosts instanceof GuardConfigError) return allowedHosts
  const allowedOrigins = checkList("allowedOrigins", options.allowedOrigins)
  if (allowedOrigins instanceof GuardConfigError) return allowedOrigins
  return { realm, resourceMetadataUrl, allowedHosts, allowedOrigins, requiredCapability }
}

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

// The body refusals are about the request's content, not its credentials.
const isBodyKind = (kind: RejectionKind): kind is "body-too-large" | "parse-error" =>
  kind === "body-too-large" || kind === "parse-error"

const statusOf = (kind: RejectionKind): Refusal["status"] =>
  kind === "store-unavailable"
    ? 503
    : kind === "body-too-large"
    ? 413
    : kind === "host" || kind === "origin" || kind === "insufficient-capability"
    ? 403
    : kind === "duplicate-host" || kind === "duplicate-authorization" || kind === "query-token" ||
        kind === "target-token" || kind === "parse-error"
    ? 400
    : 401

const errorCodeOf = (kind: RejectionKind, status: Refusal["status"]): string =>
  status === 400 || status === 413 || kind === "no-credentials"
    ? "invalid_request"
    : status === 401
    ? "invalid_token"
    : status === 503
    ? "temporarily_unavailable"
    : kind === "insufficient-capability"
    ? "insufficient_scope"
    : "forbidden"

const makeRefusal = (resolved: Resolved, kind: RejectionKind): Refusal => {
  const isInvalid = InvalidReasonSchema.literals.includes(kind as InvalidReason)
  const description = isInvalid ? invalidDescriptions[kind as InvalidReason] : descriptions[kind as keyof typeof descriptions]
  const status = statusOf(kind)
  const error = errorCodeOf(kind, status)
  let wwwAuthenticate: string | undefined
  if ((status === 400 && !isBodyKind(kind)) || status === 401 || kind === "insufficient-capability") {
    const params = [`realm=${quote(resolved.realm)}`]
    if (resolved.resourceMetadataUrl !== undefined && status !== 400) {
      params.push(`resource_metadata=${quote(resolved.resourceMetadataUrl)}`)
    }
    // RFC 6750 §3.1: a request without any credentials gets a bare challenge.
    if (kind !== "no-credentials") {
      params.push(`error=${quote(error)}`, `error_description=${quote(description)}`)
    }
    if (kind === "insufficient-capability" && resolved.requiredCapability !== undefined) {
      params.push(`scope=${quote(resolved.requiredCapability)}`)
    }
    wwwAuthenticate = `Bearer ${params.join(", ")}`
  }
  const title = kind === "parse-error"
    ? "Parse error"
    : status === 413
    ? "Payload too large"
    : status === 400
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
      code: kind === "parse-error"
        ? jsonRpcErrorCodes.parseError
        : status === 400 || status === 413
        ? jsonRpcErrorCodes.badRequest
        : status === 401
        ? jsonRpcErrorCodes.unauthorized
        : status === 503
        ? jsonRpcErrorCodes.unavailable
        : jsonRpcErrorCodes.forbidden,
      message: `${title}: ${description}`,
      data: { reason: kind, error }
    }
  }
  const headers: Record<string, string> = { "content-type": "application/json", "cache-control": "no-store" }
  if (wwwAuthenticate !== undefined) headers["www-authenticate"] = wwwAuthenticate
  if (status === 503) headers["retry-after"] = "1"
  return { kind, status, wwwAuthenticate, body, text: JSON.stringify(body), headers }
}

// The headers the rules read, filled in place by one pass over a request:
// every request reuses the one scratch object of its guard, read before
// anything can yield.
interface Seen {
  host: string | undefined
  hosts: number
  origin: string | undefined
  authorization: string | undefined
  authorizations: number
}

const equalsIgnoringCase = (name: string, lower: string): boolean => name === lower || name.toLowerCase() === lower

// Scans Node's raw header list once instead of asking for `headers`, which
// Node builds lazily and which drops a repeated Host.
const scanRaw = (raw: ReadonlyArray<string>, into: Seen): Seen => {
  into.host = into.origin = into.authorization = undefined
  into.hosts = into.authorizations = 0
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    switch (name.length) {
      case 4:
        if (equalsIgnoringCase(name, "host")) {
          if (into.host === undefined) into.host = raw[i + 1]
          into.hosts++
        }
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

const text = (value: unknown): string | undefined =>
  value === undefined || value === null
    ? undefined
    : typeof value === "string"
    ? value
    : Array.isArray(value)
    ? value.join(", ")
    : String(value)

// Where repeated headers are joined (fetch, Effect's Headers), a comma shows
// it: neither a token nor a host ever holds one.
const countJoined = (value: string | undefined): number =>
  value === undefined ? 0 : value.includes(",") ? 2 : 1

const readRecord = (headers: Readonly<Record<string, unknown>>, into: Seen): Seen => {
  into.host = text(headers["host"])
  into.origin = text(headers["origin"])
  into.authorization = text(headers["authorization"])
  into.hosts = countJoined(into.host)
  into.authorizations = countJoined(into.authorization)
  return into
}

const readWeb = (headers: { get(name: string): string | null }, into: Seen): Seen => {
  into.host = headers.get("host") ?? undefined
  into.origin = headers.get("origin") ?? undefined
  into.authorization = headers.get("authorization") ?? undefined
  into.hosts = countJoined(into.host)
  into.authorizations = countJoined(into.authorization)
  return into
}

const hostName = (host: string): string => {
  const colon = host.lastIndexOf(":")
  return colon === -1 || host.endsWith("]") ? host : host.slice(0, colon)
}

/**
 * The authority of an absolute-form target (`http://host:port/path`), `""`
 * for one that has none or is not http(s), `undefined` for an origin-form
 * target (`/path`) or `*`.
 */
const authorityOf = (target: string): string | undefined => {
  const first = target.charCodeAt(0)
  if (first === 47 /* / */ || (first === 42 /* * */ && target.length === 1)) return undefined
  // A Web request's URL is already lower-case `http://` or `https://`.
  let start = target.startsWith("http://") ? 7 : target.startsWith("https://") ? 8 : -1
  if (start === -1) {
    const scheme = target.indexOf("://")
    if (scheme === -1) return ""
    const name = target.slice(0, scheme).toLowerCase()
    if (name !== "http" && name !== "https") return ""
    start = scheme + 3
  }
  let end = start
  while (end < target.length) {
    const c = target.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break
    end++
  }
  const authority = target.slice(start, end)
  // Userinfo (`user@host`) hides the host from a naive reader: never accepted.
  return authority.includes("@") ? "" : authority
}

const hasQueryToken = (target: string): boolean => {
  const q = target.indexOf("?")
  if (q === -1) return false
  // Any spelling of the name decodes to `access_token` only through a `%`.
  if (target.indexOf("access_token", q) === -1 && target.indexOf("%", q) === -1) return false
  return new URLSearchParams(target.slice(q + 1)).has("access_token")
}

const decoded = (target: string): string => {
  try {
    return decodeURIComponent(target)
  } catch {
    // A malformed escape: decode what can be, escape by escape.
    return target.replace(/%[0-9a-fA-F]{2}/g, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)))
  }
}

// The shortest target that can hold a token: the token itself.
const tokenLength = tokenPrefix.length + 49

const hasTargetToken = (target: string): boolean => {
  if (target.length < tokenLength) return false
  if (target.includes(tokenPrefix) && tokenPattern.test(target)) return true
  if (!target.includes("%")) return false
  const plain = decoded(target)
  return plain.includes(tokenPrefix) && tokenPattern.test(plain)
}

/**
 * Compiles options into rules, for a server bound to `port` (`undefined` when
 * unknown: then the default hosts and origins accept the loopback names at
 * any port). Returns the `GuardConfigError` of an option that cannot work.
 *
 * @since 0.1.0
 */
export const compile = (options: Options | undefined, port: number | undefined): Rules | GuardConfigError => {
  const resolved = resolveOptions(options)
  if (resolved instanceof GuardConfigError) return resolved
  const refusals = Object.fromEntries(
    rejectionKinds.map((kind) => [kind, makeRefusal(resolved, kind)])
  ) as { readonly [K in RejectionKind]: Refusal }

  const hosts = resolved.allowedHosts ?? (port === undefined ? undefined : new Set(loopbackHosts(port)))
  const origins = resolved.allowedOrigins ?? (port === undefined ? undefined : new Set(loopbackOrigins(port)))
  const anyPortLoopback = new Set<string>(loopbackNames)
  // The verdict depends on the value alone, and a server sees the same few
  // Host and Origin values over and over: the last one accepted is
  // remembered, so the usual request is judged by one string comparison.
  let lastHost: string | undefined
  let lastOrigin: string | undefined
  const isAllowedHost = (host: string | undefined): boolean => {
    if (hosts === "*") return true
    if (host === undefined || host.length === 0) return false
    if (host === lastHost) return true
    let allowed = hosts !== undefined && hosts.has(host)
    if (!allowed) {
      const lower = host.toLowerCase()
      allowed = hosts === undefined ? anyPortLoopback.has(hostName(lower)) : hosts.has(lower)
    }
    if (allowed) lastHost = host
    return allowed
  }
  const isAllowedOrigin = (origin: string): boolean => {
    if (origins === "*" || origin === lastOrigin) return true
    let allowed = origins !== undefined && origins.has(origin)
    if (!allowed) {
      const lower = origin.toLowerCase()
      if (origins !== undefined) allowed = origins.has(lower)
      else {
        const url = URL.parse(lower)
        allowed = url !== null && (url.protocol === "http:" || url.protocol === "https:") &&
          anyPortLoopback.has(url.hostname)
      }
    }
    if (allowed) lastOrigin = origin
    return allowed
  }

  const scratch: Seen = { host: undefined, hosts: 0, origin: undefined, authorization: undefined, authorizations: 0 }

  // Everything after the headers were read: `authority` is that of an
  // absolute-form target (or a Web request's URL), judged beside the Host.
  const decide = (target: string, authority: string | undefined, seen: Seen): string | Refusal => {
    if (seen.hosts > 1) return refusals["duplicate-host"]
    if (!isAllowedHost(seen.host)) return refusals.host
    // A Web request's URL is most often built from its Host: judged already.
    if (authority !== undefined && authority !== seen.host && !isAllowedHost(authority)) return refusals.host
    if (seen.origin !== undefined && !isAllowedOrigin(seen.origin)) return refusals.origin
    if (seen.authorizations > 1) return refusals["duplicate-authorization"]
    if (hasQueryToken(target)) return refusals["query-token"]
    if (hasTargetToken(target)) return refusals["target-token"]
    const authorization = seen.authorization
    if (authorization === undefined) return refusals["no-credentials"]
    const space = authorization.indexOf(" ")
    const scheme = space === -1 ? authorization : authorization.slice(0, space)
    if (scheme !== "Bearer" && (scheme.length !== 6 || scheme.toLowerCase() !== "bearer")) return refusals.scheme
    return space === -1 ? "" : authorization.slice(space + 1).trim()
  }

  const checkRaw = (target: string, rawHeaders: ReadonlyArray<string>): string | Refusal =>
    decide(target, authorityOf(target), scanRaw(rawHeaders, scratch))

  const checkRecord = (target: string, headers: Readonly<Record<string, unknown>>): string | Refusal =>
    decide(target, authorityOf(target), readRecord(headers, scratch))

  const checkWeb = (url: string, headers: { get(name: string): string | null }): string | Refusal => {
    const seen = readWeb(headers, scratch)
    const authority = authorityOf(url)
    // Runtimes that build the URL from the Host header send no Host of their
    // own to judge (Deno, some proxies): the URL's authority stands for it.
    if (seen.host === undefined && authority !== undefined && authority.length > 0) {
      seen.host = authority
      seen.hosts = 1
    }
    return decide(url, authority, seen)
  }

  const refusalFor = (failure: LookupFailure): Refusal =>
    failure._tag === "StoreUnavailable" ? refusals["store-unavailable"] : refusals[failure.reason]

  const required = resolved.requiredCapability
  const judge = (outcome: CredentialScope | LookupFailure): CredentialScope | Refusal =>
    "_tag" in outcome
      ? refusalFor(outcome)
      : required === undefined || outcome.capabilities.includes(required)
      ? outcome
      : refusals["insufficient-capability"]

  return { resolved, refusals, checkRaw, checkRecord, checkWeb, judge, refusalFor }
}

/**
 * Whether a value returned by `Rules.checkRaw` and friends, or by `judge`, is
 * a refusal.
 *
 * @since 0.1.0
 */
export const isRefusal = (value: unknown): value is Refusal =>
  typeof value === "object" && value !== null && "status" in value && "kind" in value && "text" in value

/**
 * The default `maxBodySize` of the guards that read the body, 4 MiB (as
 * `McpHttpServer`'s).
 *
 * @since 0.1.0
 */
export const defaultMaxBodySize = 4 * 1024 * 1024
