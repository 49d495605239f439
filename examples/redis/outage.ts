import { NodeRedis } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { McpSessionRegistry } from "mcp-session-registry"

// Every store call is bounded by storeTimeout (real time) and fails typed:
// the guard turns StoreUnavailable into 503 + Retry-After, never 401.
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const Registry = McpSessionRegistry.layerRedis({ keyPrefix: "gateway", storeTimeout: "500 millis" }).pipe(
  Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true }))
)

const program = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "claude" })
  // What a host does with each outcome of a store call.
  const live = yield* registry.get(credential.credentialId).pipe(
    Effect.map((found) => (found._tag === "Some" ? "live" : "gone")),
    Effect.catchTag("StoreUnavailable", (error) => Effect.succeed(`unknown for now (${error.reason})`))
  )
  yield* Effect.log(`credential ${credential.credentialId}: ${live}`)
  yield* registry.revoke(credential.credentialId)
})

Effect.runPromise(program.pipe(Effect.provide(Registry))).catch((error) => {
  console.error(error)
  process.exit(1)
})
