/**
 * What an authenticated MCP POST may carry, checked before the transport sees
 * it: a body of bounded size, read here in full (so a credential revoked
 * while its body was still arriving is asked about again once it is in), that
 * is JSON, and JSON-RPC messages with no member JSON-RPC does not define.
 *
 * Effect's transport copies a message's top-level `headers` member over the
 * request's HTTP headers, `Mcp-Session-Id` included, and reads `traceId`,
 * `spanId`, `sampled` and `discard` from a message too: a member outside
 * JSON-RPC 2.0 would let a body override what the guard and the session
 * binding checked, so any of them refuses the whole request.
 *
 * The body is read through the request's own cached reader, so the
 * transport's later read answers the same bytes without touching the socket.
 */
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpServerError from "effect/http/HttpServerError"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"

/** The bounds of one MCP POST. */
export interface Limits {
  /** The largest body read, in bytes. */
  readonly maxBodySize: number
  /** The largest body that holds an `initialize`, in bytes: the transport keeps it for the session's life. */
  readonly maxInitializeSize: number
}

/** The defaults: a few MiB per request, a few KiB kept per session. */
export const defaultLimits: Limits = {
  maxBodySize: 4 * 1024 * 1024,
  maxInitializeSize: 16 * 1024
}

/**
 * Why the edge refused a request, the `data.reason` of its JSON-RPC body.
 */
export type RefusalReason =
  | "body-too-large"
  | "initialize-too-large"
  | "invalid-member"
  | "unreadable-body"
  | "credential-session-limit"
  | "session-limit"
  | "not-found"
  | "transport-refused"
  | "parse-error"
  | "method-not-allowed"
  | "not-acceptable"
  | "unsupported-media-type"

/** The JSON-RPC error code of each refusal: -32600 (Invalid Request) for a bad request, server codes else. */
export const refusalCodes: Record<RefusalReason, number> = {
  "body-too-large": -32600,
  "initialize-too-large": -32600,
  "invalid-member": -32600,
  "unreadable-body": -32600,
  "credential-session-limit": -32005,
  "session-limit": -32005,
  "not-found": -32601,
  "transport-refused": -32600,
  "parse-error": -32700,
  "method-not-allowed": -32600,
  "not-acceptable": -32600,
  "unsupported-media-type": -32600
}

const statuses: Record<RefusalReason, number> = {
  "body-too-large": 413,
  "initialize-too-large": 413,
  "invalid-member": 400,
  "unreadable-body": 400,
  "credential-session-limit": 429,
  "session-limit": 503,
  "not-found": 404,
  "transport-refused": 400,
  "parse-error": 400,
  "method-not-allowed": 405,
  "not-acceptable": 406,
  "unsupported-media-type": 415
}

// An OAuth-style error code, as the guard's refusals carry (`data.error`):
// RFC 6749's where one fits, a plain one else.
const errors: Record<RefusalReason, string> = {
  "body-too-large": "invalid_request",
  "initialize-too-large": "invalid_request",
  "invalid-member": "invalid_request",
  "unreadable-body": "invalid_request",
  "credential-session-limit": "too_many_sessions",
  "session-limit": "temporarily_unavailable",
  "not-found": "not_found",
  "transport-refused": "invalid_request",
  "parse-error": "invalid_request",
  "method-not-allowed": "invalid_request",
  "not-acceptable": "invalid_request",
  "unsupported-media-type": "invalid_request"
}

const messages: Record<RefusalReason, string> = {
  "body-too-large": "Content too large: the request body exceeds the server's limit",
  "initialize-too-large": "Content too large: an initialize request exceeds the server's limit",
  "invalid-member": "Invalid Request: a message carries a member JSON-RPC 2.0 does not define",
  "unreadable-body": "Invalid Request: the request body could not be read",
  "credential-session-limit": "Too many sessions: this credential holds as many MCP sessions as it may; end one first",
  "session-limit": "Service unavailable: the server holds as many MCP sessions as it may; retry later",
  "not-found": "Not found",
  "transport-refused":
    "Invalid Request: the MCP transport refused this request (a call outside a session, or a batch, which it does not serve)",
  "parse-error": "Parse error: the body is not JSON",
  "method-not-allowed": "Method not allowed: this endpoint takes only the methods its Allow header lists; it opens no GET stream",
  "not-acceptable": "Not acceptable: the Accept header must list both application/json and text/event-stream",
  "unsupported-media-type": "Unsupported media type: the body must be sent as Content-Type: application/json"
}

/**
 * A refusal's response: a JSON-RPC error with `data.reason` and `data.error`,
 * and `Cache-Control: no-store`, under `id` (`null` unless the refused
 * request's id is known; those without one are built once, at load). `close`
 * also asks the client to close the connection, for a body left unread.
 */
export const refusal = (
  reason: RefusalReason,
  close = false,
  id: RequestId | null = null
): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if (close) headers["connection"] = "close"
  return HttpServerResponse.text(
    JSON.stringify({
      jsonrpc: "2.0",
      id,
      error: { code: refusalCodes[reason], message: messages[reason], data: { reason, error: errors[reason] } }
    }),
    { status: statuses[reason], contentType: "application/json", headers }
  )
}

const tooLarge = refusal("body-too-large", true)
const tooLargeInitialize = refusal("initialize-too-large")
const invalidMember = refusal("invalid-member")
const unreadable = refusal("unreadable-body", true)
const parseError = refusal("parse-error")

/** What JSON-RPC 2.0 defines at the top level of a request, a notification or a response. */
const members = new Set(["jsonrpc", "id", "method", "params", "result", "error"])

/** A JSON-RPC request id. */
export type RequestId = string | number

/** What a checked body holds, for the session binding. */
export interface Checked {
  /** Whether a message of it is an `initialize`: it would open a session. */
  readonly initialize: boolean
  /**
   * The id of that `initialize`, where it has one: a refusal of it (a
   * session limit) answers under it, so the client can match the error to
   * its request.
   */
  readonly initializeId?: RequestId | undefined
}

/** A body with no `initialize` (and any request that is no POST): it opens no session. */
export const noInitialize: Checked = { initialize: false }
const withInitialize: Checked = { initialize: true }

const isRequestId = (id: unknown): id is RequestId => typeof id === "string" || typeof id === "number"

// Anything but a plain object is left to the transport, which refuses it.
const inspectMessage = (message: unknown): "member" | "initialize" | undefined => {
  if (message === null || typeof message !== "object" || Array.isArray(message)) return undefined
  for (const key of Object.keys(message)) {
    if (!members.has(key)) return "member"
  }
  return (message as { readonly method?: unknown }).method === "initialize" ? "initialize" : undefined
}

/**
 * Checks a body's messages: `Checked`, or the refusal to send. A body that is
 * no JSON is refused with a 400 parse error here: Effect's transport would
 * answer it with a 200.
 */
export const inspect = (text: string, limits: Limits): Checked | HttpServerResponse.HttpServerResponse => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return parseError
  }
  let initialize = false
  const batch = Array.isArray(parsed)
  for (const message of batch ? parsed as ReadonlyArray<unknown> : [parsed]) {
    const found = inspectMessage(message)
    if (found === "member") return invalidMember
    if (found === "initialize") initialize = true
  }
  if (!initialize) return noInitialize
  // The length in UTF-16 units bounds the bytes from below; only a body near
  // the bound pays for counting them.
  if (text.length > limits.maxInitializeSize || Buffer.byteLength(text) > limits.maxInitializeSize) {
    return tooLargeInitialize
  }
  // A batch is answered by an array: the refusal of a whole one keeps `null`.
  const id = batch ? undefined : (parsed as { readonly id?: unknown }).id
  return isRequestId(id) ? { initialize: true, initializeId: id } : withInitialize
}

const isTooLarge = (error: unknown): boolean =>
  HttpServerError.isHttpServerError(error) && error.reason._tag === "RequestParseError" &&
  error.reason.reason === "BodyTooLarge"

/**
 * Reads and checks the body of a POST: `Checked`, or the refusal to send. A
 * `Content-Length` over the limit is refused before a byte is read; a body
 * sent without one is cut at the limit.
 */
export const read = (
  request: HttpServerRequest.HttpServerRequest,
  limits: Limits
): Effect.Effect<Checked | HttpServerResponse.HttpServerResponse> => {
  const declared = request.headers["content-length"]
  if (declared !== undefined && !(Number(declared) <= limits.maxBodySize)) {
    return Effect.succeed(tooLarge)
  }
  return request.text.pipe(
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(limits.maxBodySize)),
    Effect.matchEffect({
      onFailure: (error) => Effect.succeed(isTooLarge(error) ? tooLarge : unreadable),
      onSuccess: (text) => Effect.succeed(inspect(text, limits))
    })
  )
}
