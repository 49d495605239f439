import { Effect, Layer } from "effect"
import { McpSessionRegistry, RegistryConfig, type Revocation } from "mcp-session-registry"

const auditHook: Revocation.RevocationHook = (event) =>
  Effect.log(`${event.credential.credentialId} left: ${event.reason}`)

// Options in code.
const InCode = McpSessionRegistry.layer({ idleTimeout: "2 hours", maxLifetime: "7 days", hooks: [auditHook] })

// Options from MCP_SESSION_REGISTRY_* environment variables, hooks in code.
const FromEnvironment = Layer.unwrap(
  Effect.map(RegistryConfig.config, (options) => McpSessionRegistry.layer({ ...options, hooks: [auditHook] }))
)

const session = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
  yield* registry.revokeThread(credential.threadId)
})

const program = Effect.gen(function*() {
  yield* session.pipe(Effect.provide(InCode))
  yield* session.pipe(Effect.provide(FromEnvironment))
  // An option that cannot work fails the layer, naming the option and the value.
  const error = yield* Effect.flip(session.pipe(Effect.provide(McpSessionRegistry.layer({ idleTimeout: "0 seconds" }))))
  console.log(error.message)
})

Effect.runPromise(program)
