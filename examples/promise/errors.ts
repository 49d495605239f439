import {
  createRegistry,
  InvalidCredential,
  InvalidIssueRequest,
  RegistryClosed,
  RegistryConfigError,
  RegistryFull
} from "mcp-session-registry/promise"

// Each method rejects with the error classes the Effect API fails with.
try {
  await createRegistry({ idleTimeout: "2 hours", maxLifetime: "1 hour" })
} catch (error) {
  if (error instanceof RegistryConfigError) console.log(`bad option ${error.option}: ${error.detail}`)
}

const registry = await createRegistry({ maxCredentialsPerThread: 1 })
await registry.resolve("not a token").catch((error) => {
  if (error instanceof InvalidCredential) console.log(`refused: ${error.reason}`) // malformed
})
await registry.issue({ threadId: "", providerInstanceId: "codex" }).catch((error) => {
  if (error instanceof InvalidIssueRequest) console.log(`bad request: ${error.field}`) // threadId
})
await registry.issue({ threadId: "t", providerInstanceId: "codex" })
await registry.issue({ threadId: "t", providerInstanceId: "claude-code" }).catch((error) => {
  if (error instanceof RegistryFull) console.log(`full: ${error.scope} holds ${error.limit}`) // thread holds 1
})

await registry.close()
await registry.list().catch((error) => {
  if (error instanceof RegistryClosed) console.log(error.message)
})
