/**
 * An MCP session belongs to the credential that opened it.
 *
 * Effect's MCP transport hands out an `Mcp-Session-Id` at `initialize` and
 * accepts it from anyone afterwards. Behind the guard every request is
 * authenticated, but another agent's credential must still not reach into a
 * session it did not open (to end it with a DELETE, or to answer its
 * requests): such a request gets the 404 the transport gives an unknown
 * session. The binding is forgotten when the session is deleted or its
 * credential leaves the registry.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { CurrentCredential } from "../McpBearerAuth.ts"
import { McpSessionRegistry } from "../McpSessionRegistry.ts"

const sessionHeader = "mcp-session-id"

const notFound = HttpServerResponse.text(
  JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }),
  { status: 404, contentType: "application/json", headers: { "cache-control": "no-store" } }
)

/**
 * Route middleware for the MCP endpoint; runs inside the guard, whose
 * `CurrentCredential` it reads.
 */
export const middleware = HttpRouter.middleware<{ provides: never }>()(Effect.gen(function*() {
  const registry = yield* McpSessionRegistry
  const owners = new Map<string, string>()
  const sessionsOf = new Map<string, Set<string>>()

  const bind = (sessionId: string, credentialId: string) => {
    owners.set(sessionId, credentialId)
    let sessions = sessionsOf.get(credentialId)
    if (sessions === undefined) sessionsOf.set(credentialId, sessions = new Set())
    sessions.add(sessionId)
  }
  const unbind = (sessionId: string) => {
    const owner = owners.get(sessionId)
    if (owner === undefined) return
    owners.delete(sessionId)
    const sessions = sessionsOf.get(owner)
    sessions?.delete(sessionId)
    if (sessions?.size === 0) sessionsOf.delete(owner)
  }
  // A session keeps its dead owner: credential ids are never reused, so no
  // other credential can take over a session whose credential was revoked.
  // (Effect's transport keeps such a session until a DELETE; so does this map.)
  yield* registry.onRevoke((event) => Effect.sync(() => void sessionsOf.delete(event.credential.credentialId)))

  return (httpEffect) =>
    Effect.withFiber((fiber) => {
      const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
      const credentialId = Context.getUnsafe(fiber.context as Context.Context<CurrentCredential>, CurrentCredential)
        .credentialId
      const sessionId = request.headers[sessionHeader]
      if (sessionId === undefined) {
        // The transport sets the session header in a pre-response handler of
        // its own; one appended after the handler ran sees it.
        return Effect.tap(httpEffect, () =>
          Effect.sync(() =>
            HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_, response) => {
              const opened = response.headers[sessionHeader]
              if (opened !== undefined && response.status < 300) bind(opened, credentialId)
              return Effect.succeed(response)
            })
          ))
      }
      const owner = owners.get(sessionId)
      if (owner !== undefined && owner !== credentialId) return Effect.succeed(notFound)
      if (request.method !== "DELETE") return httpEffect
      return Effect.tap(httpEffect, (response) =>
        Effect.sync(() => {
          if (response.status < 300) unbind(sessionId)
        }))
    })
}))
