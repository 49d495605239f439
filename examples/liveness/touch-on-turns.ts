import { Effect, Redacted } from "effect"
import { McpSessionRegistry } from "mcp-session-registry"

// Only the host's own signals keep a session alive: a provider turn calls
// `touch`. A token used by anyone else authenticates but keeps nothing alive.
const RegistryLive = McpSessionRegistry.layer({
  idleTimeout: "300 millis", // minutes in a real host; short so this runs in a second
  slideOnUse: false,
  hooks: [(event) => Effect.sync(() => console.log(`${event.credential.credentialId} left (${event.reason})`))]
})

/** Stand-in for spawning an agent CLI with the token in its environment. */
const launchAgent = (token: string) => Effect.sync(() => console.log(`agent launched (${token.length}-character token)`))

const program = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const threadId = "thread-1"
  const launch = Effect.gen(function*() {
    const credential = yield* registry.issue({ threadId, providerInstanceId: "claude-code" })
    yield* launchAgent(Redacted.value(credential.token))
  })
  yield* launch

  // The host's turn loop: before each provider turn, a sign of life.
  const turn = (n: number) =>
    Effect.gen(function*() {
      const live = yield* registry.touch(threadId)
      if (live === 0) {
        // The thread should have a credential and has none: it died (idle,
        // expired, revoked). Re-issue and re-launch between turns.
        console.log(`turn ${n}: the session's credential died; re-issuing and re-launching`)
        yield* launch
      } else {
        console.log(`turn ${n}: the session is live`)
      }
    })
  yield* turn(1)
  yield* Effect.sleep("100 millis")
  yield* turn(2)
  // The user walked away for longer than idleTimeout.
  yield* Effect.sleep("500 millis")
  yield* turn(3)
})

Effect.runPromise(program.pipe(Effect.provide(RegistryLive)))
