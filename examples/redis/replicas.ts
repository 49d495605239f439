import { NodeRedis } from "@effect/platform-node"
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { McpSessionRegistry } from "mcp-session-registry"

// Two replicas of a gateway: each builds the registry on the same Redis and keyPrefix.
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const replica = (name: string) =>
  McpSessionRegistry.layerRedis({
    keyPrefix: "gateway",
    storeTimeout: "2 seconds",
    hooks: [(event) => Effect.log(`${name} removed ${event.credential.credentialId} (${event.reason})`)]
  }).pipe(Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true })))

const program = Effect.gen(function*() {
  const scopeA = yield* Scope.make()
  const a = Context.get(yield* Layer.buildWithScope(replica("A"), scopeA), McpSessionRegistry.McpSessionRegistry)
  const b = Context.get(yield* Layer.buildWithScope(replica("B"), yield* Effect.scope), McpSessionRegistry.McpSessionRegistry)

  // Minted on A, answered on B.
  const credential = yield* a.issue({ threadId: "thread-1", providerInstanceId: "codex" })
  const token = Redacted.value(credential.token)
  yield* Effect.log(`B resolves it for ${(yield* b.resolve(token)).threadId}`)

  // A closes (a rolling restart): nothing is revoked, B still answers.
  yield* Scope.close(scopeA, Exit.void)
  yield* Effect.log(`after A closed, B still resolves it: ${(yield* b.resolve(token)).credentialId}`)

  // Revoked on B: refused everywhere once the call returned.
  yield* b.revoke(credential.credentialId)
  const refused = yield* Effect.flip(b.resolve(token))
  yield* Effect.log(`after the revoke: ${refused.reason}`)
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
