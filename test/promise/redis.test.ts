import { afterAll, afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import { createClient } from "redis"
import { Credential, McpSessionRegistry, RegistryConfig } from "../../src/index.ts"
import { createRegistry, type LookupCall, type Registry, reveal } from "../../src/promise/index.ts"
import { type RedisServer, startRedisServer } from "../support/redis.ts"

let server: RedisServer
beforeAll(async () => {
  server = await startRedisServer()
}, 30_000)
afterAll(async () => {
  await server?.stop()
})

const registries: Array<Registry> = []
afterEach(async () => {
  await Promise.all(registries.splice(0).map((registry) => registry.close()))
})

let prefixes = 0
const prefix = () => `promise-${process.pid}-${++prefixes}`

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

const request = { threadId: "thread-1", providerInstanceId: "codex" }

describe("createRegistry on Redis", () => {
  it("serves every method from a Redis URL, shared by two registries on one prefix", async () => {
    const keyPrefix = prefix()
    const a = await createRegistry({ store: { redis: { url: server.url }, keyPrefix } })
    const b = await createRegistry({ store: { redis: { url: server.url }, keyPrefix } })
    registries.push(a, b)
    const heardOnA: Array<string> = []
    a.onRevoke((event) => void heardOnA.push(`${event.credential.credentialId} ${event.reason}`))

    const credential = await a.issue(request)
    const token = reveal(credential.token)
    assert.strictEqual((await b.resolve(token)).credentialId, credential.credentialId)
    // No synchronous path over the network: a Promise of one round trip.
    const found = b.lookup(token)
    assert.instanceOf(found, Promise)
    assert.strictEqual(((await found) as Credential.CredentialScope).credentialId, credential.credentialId)
    assert.strictEqual(await b.touch("thread-1"), 1)
    const end = b.beginCall(credential.credentialId)
    end()
    end()
    const call = b.lookupCall(token)
    assert.instanceOf(call, Promise)
    const began = (await call) as LookupCall
    assert.strictEqual(began.scope.credentialId, credential.credentialId)
    began.end()
    assert.strictEqual((await b.get(credential.credentialId))?.threadId, "thread-1")
    assert.deepStrictEqual((await b.list()).map((info) => info.credentialId), [credential.credentialId])

    assert.isTrue(await b.revoke(credential.credentialId))
    const refused = await rejection(a.resolve(token))
    assert.instanceOf(refused, Credential.InvalidCredential)
    assert.strictEqual((refused as Credential.InvalidCredential).reason, "revoked")
    assert.strictEqual(((await a.lookup(token)) as Credential.InvalidCredential).reason, "revoked")
    assert.isUndefined(await a.get(credential.credentialId))

    const second = await a.issue({ threadId: "thread-2", providerInstanceId: "codex" })
    assert.strictEqual(await b.revokeProviderSession(second.providerSessionId), 1)
    await a.issue({ threadId: "thread-3", providerInstanceId: "codex" })
    assert.strictEqual(await b.revokeThread("thread-3"), 1)
    await a.issue({ threadId: "thread-4", providerInstanceId: "codex" })
    assert.strictEqual(await b.revokeAll(), 1)

    // Every removal, made on B, was heard on A.
    for (let i = 0; i < 100 && heardOnA.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.strictEqual(heardOnA.length, 4)
    assert.include(heardOnA[0]!, `${credential.credentialId} revoked`)

    // Closing one replica revokes nothing: the other keeps serving.
    const live = await a.issue({ threadId: "thread-5", providerInstanceId: "codex" })
    await a.close()
    assert.strictEqual((await b.resolve(reveal(live.token))).credentialId, live.credentialId)
  })

  it("runs on a node-redis client the host owns, and leaves it open", async () => {
    const client = createClient({ url: server.url })
    await client.connect()
    try {
      const registry = await createRegistry({ store: { redis: { client }, keyPrefix: prefix() } })
      const credential = await registry.issue(request)
      assert.strictEqual((await registry.resolve(reveal(credential.token))).threadId, "thread-1")
      const full = await rejection(registry.issue({ threadId: "", providerInstanceId: "codex" }))
      assert.instanceOf(full, McpSessionRegistry.InvalidIssueRequest)
      await registry.close()
      assert.strictEqual(await client.ping(), "PONG")
    } finally {
      client.destroy()
    }
  })

  it("rejects an unreachable Redis with StoreUnavailable and a bad store with RegistryConfigError", async () => {
    const down = await startRedisServer()
    const url = down.url
    await down.stop()
    const unreachable = await rejection(createRegistry({ store: { redis: { url } } }))
    assert.instanceOf(unreachable, McpSessionRegistry.StoreUnavailable)
    assert.strictEqual((unreachable as McpSessionRegistry.StoreUnavailable).reason, "unreachable")

    for (
      const [store, option] of [
        [{ redis: { url: "http://127.0.0.1:1" } }, "store.redis.url"],
        [{ redis: { client: {} } }, "store.redis.client"],
        [{ redis: {} }, "store.redis"],
        [{ redis: { url: server.url }, keyPrefix: "{x}" }, "keyPrefix"],
        [{ redis: { url: server.url }, storeTimeout: 0 }, "storeTimeout"]
      ] as const
    ) {
      const error = await rejection(createRegistry({ store: store as never }))
      assert.instanceOf(error, RegistryConfig.RegistryConfigError, JSON.stringify(store))
      assert.strictEqual((error as RegistryConfig.RegistryConfigError).option, option)
    }
    // A URL's password never reaches the error.
    const hidden = await rejection(createRegistry({ store: { redis: { url: "http://user:s3cret@host" } } }))
    assert.notInclude(String(hidden), "s3cret")
    // Nor does the URL given where the client belongs (a REDIS_URL passed as `client`).
    const misplaced = await rejection(createRegistry({ store: { redis: { client: "redis://user:s3cret@host" as never } } }))
    assert.instanceOf(misplaced, RegistryConfig.RegistryConfigError)
    assert.strictEqual((misplaced as RegistryConfig.RegistryConfigError).option, "store.redis.client")
    assert.notInclude(String(misplaced), "s3cret")
    assert.notInclude(JSON.stringify(misplaced), "s3cret")
    // Nor does one given as the store itself (`store: process.env.REDIS_URL`).
    const asStore = await rejection(createRegistry({ store: "redis://user:s3cret@host:6379" as never }))
    assert.instanceOf(asStore, RegistryConfig.RegistryConfigError)
    assert.strictEqual((asStore as RegistryConfig.RegistryConfigError).option, "store")
    assert.notInclude(String(asStore), "s3cret")
    assert.notInclude(JSON.stringify(asStore), "s3cret")
  })

  it("rejects with StoreUnavailable while Redis does not answer", async () => {
    const own = await startRedisServer()
    try {
      const registry = await createRegistry({ store: { redis: { url: own.url }, keyPrefix: prefix(), storeTimeout: "200 millis" } })
      registries.push(registry)
      const credential = await registry.issue(request)
      own.freeze()
      try {
        const error = await rejection(registry.resolve(reveal(credential.token)))
        assert.instanceOf(error, McpSessionRegistry.StoreUnavailable)
        const found = await registry.lookup(reveal(credential.token))
        assert.instanceOf(found, McpSessionRegistry.StoreUnavailable)
        // Another thread: a timed-out script may still run once Redis thaws,
        // and a replacing issue would then revoke the credential above.
        const issued = await rejection(registry.issue({ threadId: "thread-2", providerInstanceId: "codex" }))
        assert.instanceOf(issued, McpSessionRegistry.StoreUnavailable)
      } finally {
        own.thaw()
      }
      assert.strictEqual((await registry.resolve(reveal(credential.token))).credentialId, credential.credentialId)
    } finally {
      await Promise.all(registries.splice(0).map((registry) => registry.close()))
      await own.stop()
    }
  })
})
