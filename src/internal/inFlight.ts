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

/** Runs `handler`, calling `end` (idempotent) once its answer is over. */
export const whileAnswering = <E, R>(
  end: () => void,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.withFiber((fiber) => {
    const ended = Effect.sync(end)
    return Effect.onExit(
      Effect.flatMap(handler, (response) => {
        const body = response.body
        if (body._tag !== "Stream") {
          end()
          return Effect.succeed(response)
        }
        const streamed = HttpServerResponse.setBody(
          response,
          HttpBody.stream(Stream.onExit(body.stream, () => ended), body.contentType, body.contentLength)
        )
        // A stream nobody pulls to its end still ends with the request.
        const scope = Context.getOrUndefined(fiber.context, Scope.Scope)
        return scope === undefined ? Effect.succeed(streamed) : Effect.as(Scope.addFinalizer(scope, ended), streamed)
      }),
      (exit) => (exit._tag === "Failure" ? ended : Effect.void)
    )
  })
