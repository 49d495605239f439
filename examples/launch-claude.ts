import { Effect } from "effect"
import { McpSessionRegistry, ProviderLaunch } from "mcp-session-registry"

const program = Effect.gen(function*() {
  const registry = yield* McpSessionRegistry.McpSessionRegistry
  const credential = yield* registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
  const launch = yield* ProviderLaunch.claudeCode({
    credential,
    serverName: "host",
    endpoint: "http://127.0.0.1:4000/mcp"
  })
  // A host spawns: spawn("claude", [...launch.args, "--strict-mcp-config", "-p", prompt],
  //   { env: { ...process.env, ...launch.env } })
  // The token is in launch.env only; launch.args only name the variable.
  console.log(`args: ${launch.args.join(" ")}`)
  console.log(`env:  ${Object.keys(launch.env).join(", ")}`)
})

Effect.runPromise(program.pipe(Effect.provide(McpSessionRegistry.layer())))
