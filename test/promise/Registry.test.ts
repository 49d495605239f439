import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Credential, McpSessionRegistry, RegistryConfig } from "../../src/index.ts"
import {
  createRegistry,
  type LookupCall,
  type Registry,
  RegistryClosed,
  reveal,
  type RevocationEvent
} from "../../src/promise/index.ts"

const registries: Array<Registry> = []
const open = async (options?: Parameters<typeof createRegistry>[0]) => {
  const registry = await createRegistry(options)
  registries.push(registry)
  return registry
}
afterEach(async () => {
  await Promise.all(registries.splice(0).map((registry) => registry.close()))
  vi.restoreAllMocks()
})

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

/** Every line the default logger writes while `body` runs. */
const logged = () => {
  const lines: Array<string> = []
  const record = (...args: Array<unknown>) => void lines.push(args.map(String).join(" "))
  vi.spyOn(console, "log").mockImplementation(record)
  vi.spyOn(console, "error").mockImplementation(record)
  vi.spyOn(console, "warn").mockImplementation(record)
  return lines
}

const request = { threadId: "thread-1", providerInstanceId: "claude-code" }

describe("createRegistry", () => {
  it("issues, resolves and revokes through Promises", async () => {
    const registry = await open()
    const credential = await registry.issue({ ...request, capabilities: ["tools"] })
    assert.match(credential.credentialId, /^cred_/)
    assert.isTrue(Redacted.isRedacted(credential.token))
    assert.strictEqual(String(credential.token), "<redacted:McpSessionToken>")
    const token = reveal(credential.token)
    assert.strictEqual(reveal(credential.authorizationHeader), `Bearer ${token}`)

    const scope = await registry.resolve(token)
    assert.strictEqual(scope.credentialId, credential.credentialId)
    assert.strictEqual(scope.threadId, "thread-1")
    assert.deepStrictEqual(scope.capabilities, ["tools"])

    assert.isTrue(await registry.revoke(credential.credentialId))
    assert.isFalse(await registry.revoke(credential.credentialId))
    const refused = await rejection(registry.resolve(token))
    assert.instanceOf(refused, Credential.InvalidCredential)
    assert.strictEqual((refused as Credential.InvalidCredential).reason, "revoked")
  })

  it("lists, gets, touches and revokes by provider session, thread and all", async () => {
    const registry = await open()
    const a = await registry.issue(request)
    const b = await registry.issue({ threadId: "thread-1", providerInstanceId: "codex" })
    const c = await registry.issue({ threadId: "thread-2", providerInstanceId: "codex" })
    const d = await registry.issue({ threadId: "thread-3", providerInstanceId: "codex" })

    assert.deepStrictEqual((await registry.list()).map((info) => info.credentialId).sort(), [a, b, c, d].map((x) => x.credentialId).sort())
    const info = await registry.get(a.credentialId)
    assert.strictEqual(info?.providerSessionId, a.providerSessionId)
    assert.notProperty(info, "token")
    assert.isUndefined(await registry.get("cred_nothing"))
    assert.strictEqual(await registry.touch("thread-1"), 2)
    assert.strictEqual(await registry.touch("no-such-thread"), 0)

    assert.strictEqual(await registry.revokeProviderSession(a.providerSessionId), 1)
    assert.strictEqual(await registry.revokeProviderSession(a.providerSessionId), 0)
    assert.isUndefined(await registry.get(a.credentialId))
    assert.strictEqual(await registry.revokeThread("thread-1"), 1)
    assert.strictEqual(await registry.revokeAll(), 2)
    assert.deepStrictEqual(await registry.list(), [])
    assert.isUndefined(await registry.get(d.credentialId))
  })

  it("rejects with the error classes the Effect API fails with", async () => {
    const registry = await open({ maxCredentialsPerThread: 1 })
    const effectFailure = await Effect.runPromise(
      Effect.flip(McpSessionRegistry.McpSessionRegistry.use((r) => r.resolve("mcpsr_nope"))).pipe(
        Effect.provide(McpSessionRegistry.layer())
      )
    )

    const malformed = await rejection(registry.resolve("mcpsr_nope"))
    assert.instanceOf(malformed, Credential.InvalidCredential)
    assert.strictEqual((malformed as object).constructor, (effectFailure as object).constructor)
    assert.strictEqual((malformed as Credential.InvalidCredential).reason, "malformed")

    const badRequest = await rejection(registry.issue({ threadId: "", providerInstanceId: "codex" }))
    assert.instanceOf(badRequest, McpSessionRegistry.InvalidIssueRequest)
    assert.strictEqual((badRequest as McpSessionRegistry.InvalidIssueRequest).field, "threadId")

    await registry.issue(request)
    const full = await rejection(registry.issue({ ...request, providerInstanceId: "codex" }))
    assert.instanceOf(full, McpSessionRegistry.RegistryFull)
    assert.strictEqual((full as McpSessionRegistry.RegistryFull).scope, "thread")
  })

  it("looks a token up as a plain value on the memory store, never throwing", async () => {
    const registry = await open()
    const credential = await registry.issue(request)
    const found = registry.lookup(reveal(credential.token))
    assert.notInstanceOf(found, Promise)
    assert.strictEqual((found as Credential.CredentialScope).credentialId, credential.credentialId)
    const refused = registry.lookup(42 as unknown as string)
    assert.instanceOf(refused, Credential.InvalidCredential)
    assert.strictEqual((refused as Credential.InvalidCredential).reason, "malformed")
    const end = registry.beginCall(credential.credentialId)
    end()
    end()
    assert.strictEqual(registry.beginCall("cred_nothing")(), undefined)
    const call = registry.lookupCall(reveal(credential.token))
    assert.notInstanceOf(call, Promise)
    assert.strictEqual((call as LookupCall).scope.credentialId, credential.credentialId)
    ;(call as LookupCall).end()
    assert.instanceOf(registry.lookupCall("nope"), Credential.InvalidCredential)
  })

  it("takes host-reported sleep and wake", async () => {
    const registry = await open({ idleClock: "awake" })
    const credential = await registry.issue(request)
    assert.isUndefined(await registry.reportPower("suspend"))
    assert.isUndefined(await registry.reportPower("resume"))
    assert.strictEqual((await registry.resolve(reveal(credential.token))).credentialId, credential.credentialId)
  })

  it("rejects bad options with RegistryConfigError naming the option", async () => {
    const cases: Array<[unknown, string]> = [
      [{ idleTimeout: -1 }, "idleTimeout"],
      [{ idleTimeout: "2 hours", maxLifetime: "1 hour" }, "idleTimeout"],
      [{ maxCredentials: 0 }, "maxCredentials"],
      [{ idleClock: "sometimes" }, "idleClock"],
      [{ slideOnUse: "yes" }, "slideOnUse"],
      [{ hooks: ["not a function"] }, "hooks"],
      [{ store: "disk" }, "store"],
      [{ store: { redis: 1 } }, "store.redis"],
      ["fast", "options"]
    ]
    for (const [options, option] of cases) {
      const error = await rejection(createRegistry(options as never))
      assert.instanceOf(error, RegistryConfig.RegistryConfigError, JSON.stringify(options))
      assert.strictEqual((error as RegistryConfig.RegistryConfigError).option, option)
    }
  })
})

describe("hooks", () => {
  it("runs plain and async hooks, given in the options or with onRevoke", async () => {
    const seen: Array<string> = []
    const registry = await open({
      hooks: [(event) => void seen.push(`sync ${event.reason}`)]
    })
    const off = registry.onRevoke(async (event) => {
      await Promise.resolve()
      seen.push(`async ${event.reason} ${event.credential.threadId}`)
    })
    const credential = await registry.issue(request)
    await registry.revoke(credential.credentialId)
    assert.deepStrictEqual(seen.sort(), ["async revoked thread-1", "sync revoked"])
    off()
  })

  it("logs a hook that throws or rejects and carries on", async () => {
    const lines = logged()
    const seen: Array<RevocationEvent> = []
    const registry = await open({
      hooks: [() => {
        throw new Error("hook threw")
      }]
    })
    registry.onRevoke(() => Promise.reject(new Error("hook rejected")))
    registry.onRevoke((event) => void seen.push(event))
    const credential = await registry.issue(request)
    assert.isTrue(await registry.revoke(credential.credentialId))
    assert.strictEqual(seen.length, 1)
    const text = lines.join("\n")
    assert.include(text, "hook threw")
    assert.include(text, "hook rejected")
    assert.include(text, "Revocation hook failed")
    // The registry still works.
    const next = await registry.issue(request)
    assert.strictEqual((await registry.resolve(reveal(next.token))).credentialId, next.credentialId)
    assert.notInclude(text, reveal(credential.token))
  })

  it("stops delivering once unsubscribed, and unsubscribing twice is harmless", async () => {
    const registry = await open()
    const seen: Array<string> = []
    const off = registry.onRevoke((event) => void seen.push(event.credential.credentialId))
    const first = await registry.issue(request)
    await registry.revoke(first.credentialId)
    off()
    off()
    const second = await registry.issue(request)
    await registry.revoke(second.credentialId)
    assert.deepStrictEqual(seen, [first.credentialId])
  })

  it("rejects a hook that is not a function", async () => {
    const registry = await open()
    assert.throws(() => registry.onRevoke("nope" as never), TypeError)
  })
})

describe("close", () => {
  it("revokes every live credential with reason shutdown, once, after which calls reject", async () => {
    const registry = await createRegistry()
    const seen: Array<string> = []
    registry.onRevoke(async (event) => {
      await new Promise((resolve) => setImmediate(resolve))
      seen.push(`${event.credential.threadId} ${event.reason}`)
    })
    const credential = await registry.issue(request)
    await registry.issue({ threadId: "thread-2", providerInstanceId: "codex" })
    const closing = registry.close()
    assert.strictEqual(registry.close(), closing)
    await closing
    // The hooks had finished by the time close() resolved.
    assert.deepStrictEqual(seen.sort(), ["thread-1 shutdown", "thread-2 shutdown"])
    await registry.close()
    assert.strictEqual(seen.length, 2)

    for (const call of [
      () => registry.issue(request),
      () => registry.resolve(reveal(credential.token)),
      () => registry.list(),
      () => registry.get(credential.credentialId),
      () => registry.touch("thread-1"),
      () => registry.revokeAll()
    ]) {
      const error = await rejection(call())
      assert.instanceOf(error, RegistryClosed)
    }
    // A guard asking after close is refused, never let through.
    const found = registry.lookup(reveal(credential.token))
    assert.instanceOf(found, Credential.InvalidCredential)
  })
})
