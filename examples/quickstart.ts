/**
 * The smallest host: mint a credential, authenticate with it, stop the session.
 */
import { Effect, Redacted } from "effect"
import { McpSessionRegistry } from "../src/index.ts"

const program = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
  console.log(`issued ${credential.credentialId} for ${credential.threadId}; token ${credential.token}`)

  const scope = yield* registry.resolve(Redacted.value(credential.token))
  console.log(`resolved: thread ${scope.threadId}, provider ${scope.providerInstanceId}`)

  yield* registry.revokeProviderSession(credential.providerSessionId)
  const refused = yield* Effect.flip(registry.resolve(Redacted.value(credential.token)))
  console.log(`after stop: ${refused.message}`)
}).pipe(
  Effect.provide(McpSessionRegistry.layer({
    hooks: [(event) => Effect.sync(() => console.log(`hook: ${event.credential.credentialId} left (${event.reason})`))]
  }))
)

Effect.runPromise(program)
