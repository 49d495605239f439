/**
 * One replica for the `redis` family's two-replicas figure, in a process of
 * its own: the guarded route on Effect's HTTP server, its registry on the
 * Redis at `REDIS_URL` under `KEY_PREFIX`. Sends its port over IPC.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createServer } from "node:http"
import * as McpBearerAuth from "../src/McpBearerAuth.ts"
import * as McpSessionRegistry from "../src/McpSessionRegistry.ts"

const Guarded = HttpRouter.add("GET", "/guarded", Effect.succeed(HttpServerResponse.text("ok"))).pipe(
  Layer.provide(McpBearerAuth.layer())
)

const stack = HttpRouter.serve(Guarded, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layerServer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(
    McpSessionRegistry.layerRedis({ keyPrefix: process.env["KEY_PREFIX"]!, maxCredentials: 1e7, maxCredentialsPerThread: 1000 })
  ),
  Layer.provide(NodeRedis.layer({ url: process.env["REDIS_URL"]! }))
)

Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const context = yield* Layer.build(stack)
  const server = Context.get(context, HttpServer.HttpServer)
  if (server.address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
  process.send?.({ port: server.address.port })
  yield* Effect.never
}))).catch((error) => {
  console.error(error)
  process.exit(1)
})
