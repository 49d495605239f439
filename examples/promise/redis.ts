import { createRegistry, reveal } from "mcp-session-registry/promise"

// Two replicas of a gateway: one Redis, one keyPrefix, one registry between them.
const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const store = { redis: { url }, keyPrefix: "gateway", storeTimeout: "2 seconds" } as const
const replicaA = await createRegistry({ store })
const replicaB = await createRegistry({ store })
replicaA.onRevoke((event) => console.log(`A heard: ${event.credential.credentialId} left (${event.reason})`))

// Minted on A, answered on B.
const credential = await replicaA.issue({ threadId: "thread-1", providerInstanceId: "codex" })
console.log(`B resolves it: ${(await replicaB.resolve(reveal(credential.token))).threadId}`)

// Revoked on B: refused on A at once.
await replicaB.revoke(credential.credentialId)
const onA = await replicaA.lookup(reveal(credential.token))
console.log(`A after the revoke on B: ${"reason" in onA ? onA.reason : "live"}`)

// Closing a replica revokes nothing (set revokeOnShutdown for that).
await new Promise((resolve) => setTimeout(resolve, 100)) // let A hear the revoke
await replicaA.close()
await replicaB.close()
