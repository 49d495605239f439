import { execFileSync } from "node:child_process"
import { createRegistry, InvalidCredential, reveal } from "mcp-session-registry/promise"

const registry = await createRegistry({
  idleTimeout: "30 minutes",
  hooks: [async (event) => console.log(`${event.credential.credentialId} left (${event.reason})`)]
})
// At spawn: mint, and hand the token to the agent in its environment only.
const credential = await registry.issue({ threadId: "thread-1", providerInstanceId: "claude-code" })
const env = { ...process.env, MCP_SESSION_TOKEN: reveal(credential.token) }
const child = "console.log(`child got a ${process.env.MCP_SESSION_TOKEN.length}-character token`)"
console.log(execFileSync(process.execPath, ["-e", child], { env, encoding: "utf8" }).trim())
// On every MCP request: authenticate (a use: the idle clock restarts).
const caller = await registry.resolve(env.MCP_SESSION_TOKEN)
console.log(`resolved: thread ${caller.threadId}, provider ${caller.providerInstanceId}`)
// When the session stops: revoke; hooks run with reason "session-stopped".
await registry.revokeProviderSession(credential.providerSessionId)
try {
  await registry.resolve(env.MCP_SESSION_TOKEN)
} catch (error) {
  if (error instanceof InvalidCredential) console.log(`after stop: refused, ${error.reason}`)
}
await registry.close()
