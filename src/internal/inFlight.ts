/**
 * Keeps a call in flight (see `McpSessionRegistry.beginCall`) for as long as
 * an Effect HTTP handler is answering it: until the handler fails or is
 * interrupted, or, for a streamed body, until the stream ends (or the
 * request's scope closes, for a client that went away mid-stream).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpServerResponse from "effect/http/HttpServerResponse"

// A streamed answer ends the call when its stream ends; a stream nobody pulls
// to its end still ends with the request's scope.
const streamed = (
  end: () => void,
  response: HttpServerResponse.HttpServerResponse,
  body: HttpBody.Stream
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.withFiber((fiber) => {
    const ended = Effect.sync(end)
    const tracked = HttpServerResponse.setBody(
      response,
      HttpBody.stream(Stream.onExit(body.stream, () => ended), body.contentType, body.contentLength)
    )
    const scope = Context.getOrUndefined(fiber.context, Scope.Scope)
    return scope === undefined ? Effect.succeed(tracked) : Effect.as(Scope.addFinalizer(scope, ended), tracked)
  })

/**
 * Runs `handler`, calling `end` (idempotent) once its answer is over. An
 * answer that is not a stream, the usual one, costs one `matchCauseEffect`:
 * this runs on every guarded request.
 *
 * Call it inside the `Effect.uninterruptibleMask` in which the call began,
 * with that mask's `restore`: only the handler is interruptible then, so an
 * interruption (a client gone away) can land before the call begins or while
 * the handler runs, never between the two, where nothing would end the call
 * and its credential could never go idle.
 */
export const whileAnswering = <E, R>(
  end: () => void,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  restore: <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E2, R2>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.matchCauseEffect(restore(handler), {
    onFailure: (cause) => {
      end()
      return Effect.failCause(cause)
    },
    onSuccess: (response) => {
      const body = response.body
      if (body._tag === "Stream") return streamed(end, response, body)
      end()
      return Effect.succeed(response)
    }
  })
