import { Effect, Redacted } from "effect"
import { McpSessionRegistry } from "mcp-session-registry"

const program = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  // At spawn: mint, and hand the token to the agent in its environment only.
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
  // On every MCP request: authenticate (a use: the idle clock restarts).
  const caller = yield* registry.resolve(Redacted.value(credential.token))
  console.log(`resolved: thread ${caller.threadId}, provider ${caller.providerInstanceId}`)
  // When the session stops: revoke; hooks run with reason "session-stopped".
  yield* registry.revokeProviderSession(credential.providerSessionId)
  const refused = yield* Effect.flip(registry.resolve(Redacted.value(credential.token)))
  console.log(`after stop: ${refused.message}`)
})

const RegistryLive = McpSessionRegistry.layer({
  idleTimeout: "30 minutes",
  hooks: [(event) => Effect.log(`${event.credential.credentialId} left (${event.reason})`)]
})

Effect.runPromise(program.pipe(Effect.provide(RegistryLive)))
