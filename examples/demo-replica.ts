// example: not-run (npm run demo:replicas launches it as one replica)
/**
 * One replica of a gateway for `npm run demo:replicas`: the embedded MCP
 * server on 127.0.0.1 (a free port), its registry on the Redis at
 * `REDIS_URL` under the prefix `demo`. The demo drives it over stdin:
 * `issue <thread>` and `revoke <credentialId>`; it answers on stdout with
 * lines starting `@@`, which the demo reads and never prints (an issued
 * token only ever travels over this pipe).
 */
import { createInterface } from "node:readline"
import { NodeRedis, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Redacted, Stream } from "effect"
import { McpHttpServer, McpSessionRegistry } from "../src/index.ts"

const url = process.env["REDIS_URL"]
const name = process.env["REPLICA_NAME"] ?? "replica"
if (url === undefined) {
  console.error("demo-replica: REDIS_URL must be set")
  process.exit(2)
}

const Registry = McpSessionRegistry.layerRedis({
  keyPrefix: "demo",
  hooks: [(event) => Effect.sync(() => console.log(`revocation hook on ${name}: ${event.credential.credentialId} left, reason "${event.reason}"`))]
}).pipe(Layer.provide(NodeRedis.layer({ url })))

const program = Effect.gen(function*() {
  const server = yield* McpHttpServer.McpHttpServer
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  console.log(`@@listening ${server.url}`)
  yield* Stream.fromAsyncIterable(createInterface({ input: process.stdin }), (error) => error).pipe(
    Stream.runForEach((line) => {
      const [command, argument = ""] = line.split(" ")
      if (command === "issue") {
        return Effect.map(
          registry.issue({ threadId: argument, providerInstanceId: "demo-agent" }),
          (credential) => console.log(`@@issued ${credential.credentialId} ${Redacted.value(credential.token)}`)
        )
      }
      if (command === "revoke") {
        return Effect.map(registry.revoke(argument), (live) => console.log(`@@revoked ${live}`))
      }
      return Effect.void
    }),
    Effect.orDie
  )
}).pipe(Effect.provide(McpHttpServer.layer().pipe(Layer.provideMerge(Registry))))

NodeRuntime.runMain(program)
