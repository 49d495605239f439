/**
 * The Redis store beyond the shared suites: two replicas on one prefix, what
 * reaches Redis (digests and metadata only, every key with a TTL), the cost of
 * a lookup in round trips, and the opt-in local cache.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { createClient } from "redis"
import { BearerToken, type Credential, McpSessionRegistry, type Revocation } from "../../src/index.ts"
import { advanceRedis, freshPrefix, redisReplica, redisServer, settleRedis } from "../support/stores.ts"

const minutes = (n: number) => n * 60_000
const server = redisServer()
const Registry = McpSessionRegistry.McpSessionRegistry

const token = (credential: { readonly token: Redacted.Redacted<string> }) => Redacted.value(credential.token)

const recorder = () => {
  const events: Array<Revocation.RevocationEvent> = []
  const hook: Revocation.RevocationHook = (event) => Effect.sync(() => void events.push(event))
  return { events, hook, reasons: () => events.map((event) => event.reason) }
}

const reasonOf = <A>(effect: Effect.Effect<A, { readonly reason: string }>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

const replica = (options: McpSessionRegistry.RedisOptions, scope: Scope.Scope) => redisReplica(server, options, scope)

/** A plain node-redis client to look at what the registry wrote. */
const inspector = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = createClient({ url: server.current().url })
    client.on("error", () => {})
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.close())
)

/** Polls `check` on real time (Redis pub/sub is asynchronous) for up to two seconds. */
const eventually = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && !check(); i++) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
    assert.isTrue(check(), "condition not met within 2 s")
  })

/** Commands Redis ran, by name, from `INFO commandstats`. */
const commandCounts = (client: { readonly info: (section: string) => Promise<string> }) =>
  Effect.promise(async () => {
    const info = await client.info("commandstats")
    const counts = new Map<string, number>()
    for (const match of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) counts.set(match[1]!, Number(match[2]))
    return counts
  })

// The only commands the registry's client sends. `commandstats` also counts
// the commands a script runs, which are no round trips, so only these count.
const clientCommands = new Set(["fcall", "evalsha", "eval", "script|load", "function|load", "ping"])

/** Round trips between two readings, by command. */
const ran = (before: Map<string, number>, after: Map<string, number>) => {
  const out: Record<string, number> = {}
  for (const [name, calls] of after) {
    const diff = calls - (before.get(name) ?? 0)
    if (diff > 0 && clientCommands.has(name)) out[name] = diff
  }
  return out
}

describe("McpSessionRegistry on Redis", () => {
  describe("two replicas on one prefix", () => {
    it.effect("share every credential: issue on A, resolve on B, revoke on B refused on A at once", () =>
      Effect.gen(function*() {
        const keyPrefix = freshPrefix()
        const onA = recorder()
        const onB = recorder()
        const heardOnA = recorder()
        const scopeA = yield* Scope.make()
        const a = yield* replica({ keyPrefix, hooks: [onA.hook] }, scopeA)
        const b = yield* replica({ keyPrefix, hooks: [onB.hook] }, yield* Effect.scope)
        yield* a.onRevoke(heardOnA.hook).pipe(Scope.provide(scopeA))

        const first = yield* a.issue({ threadId: "t", providerInstanceId: "claude", capabilities: ["tools"] })
        const onB1 = yield* b.resolve(token(first))
        assert.strictEqual(onB1.credentialId, first.credentialId)
        assert.deepStrictEqual(onB1.capabilities, ["tools"])
        assert.isTrue(Option.isSome(yield* b.get(first.credentialId)))

        assert.isTrue(yield* b.revoke(first.credentialId))
        // No wait: the revoke is in Redis once it returned.
        assert.strictEqual(yield* reasonOf(a.resolve(token(first))), "revoked")
        assert.isFalse(yield* a.revoke(first.credentialId))
        // Options hooks ran once, on the replica that removed it...
        assert.deepStrictEqual(onB.reasons(), ["revoked"])
        assert.deepStrictEqual(onA.reasons(), [])
        // ...and A's onRevoke hook heard of it through pub/sub.
        yield* eventually(() => heardOnA.events.length === 1)
        assert.strictEqual(heardOnA.events[0]!.credential.credentialId, first.credentialId)
        assert.strictEqual(heardOnA.events[0]!.reason, "revoked")

        // A replacement on B of A's credential, and a thread revoked on A.
        const second = yield* a.issue({ threadId: "t", providerInstanceId: "codex" })
        const third = yield* b.issue({ threadId: "t", providerInstanceId: "codex" })
        assert.strictEqual(yield* reasonOf(a.resolve(token(second))), "revoked")
        assert.strictEqual(yield* a.revokeThread("t"), 1)
        assert.strictEqual(yield* reasonOf(b.resolve(token(third))), "revoked")
        assert.deepStrictEqual(onB.reasons(), ["revoked", "replaced"])
        assert.deepStrictEqual(onA.reasons(), ["session-stopped"])

        // A closes: nothing is revoked, B and a fresh A' still resolve A's credential.
        const kept = yield* a.issue({ threadId: "u", providerInstanceId: "claude" })
        yield* Scope.close(scopeA, Exit.void)
        assert.deepStrictEqual(onA.reasons(), ["session-stopped"])
        assert.strictEqual((yield* b.resolve(token(kept))).credentialId, kept.credentialId)
        const again = yield* replica({ keyPrefix }, yield* Effect.scope)
        assert.strictEqual((yield* again.resolve(token(kept))).credentialId, kept.credentialId)
        assert.deepStrictEqual((yield* again.list).map((c) => c.credentialId), [kept.credentialId])
      }).pipe(Effect.scoped))

    it.effect("both sweepers running, each idle credential's hooks run exactly once across both", () =>
      Effect.gen(function*() {
        const keyPrefix = freshPrefix()
        const onA = recorder()
        const onB = recorder()
        const options = { keyPrefix, idleTimeout: "10 minutes", sweepInterval: "1 minute" } as const
        const a = yield* replica({ ...options, hooks: [onA.hook] }, yield* Effect.scope)
        const b = yield* replica({ ...options, hooks: [onB.hook] }, yield* Effect.scope)
        const issued = []
        for (let i = 0; i < 30; i++) issued.push(yield* (i % 2 === 0 ? a : b).issue({ threadId: `t${i}`, providerInstanceId: "p" }))
        yield* advanceRedis(minutes(12))
        const all = [...onA.events, ...onB.events]
        assert.sameMembers(all.map((e) => e.credential.credentialId), issued.map((c) => c.credentialId))
        assert.strictEqual(all.length, issued.length)
        assert.isTrue(all.every((e) => e.reason === "idle"))
        assert.strictEqual(yield* a.sweep, 0)
        assert.strictEqual(yield* b.sweep, 0)
      }).pipe(Effect.scoped))

    it.effect("revokeOnShutdown: closing one replica revokes every credential under the prefix", () =>
      Effect.gen(function*() {
        const keyPrefix = freshPrefix()
        const onA = recorder()
        const scopeA = yield* Scope.make()
        const a = yield* replica({ keyPrefix, revokeOnShutdown: true, hooks: [onA.hook] }, scopeA)
        const b = yield* replica({ keyPrefix }, yield* Effect.scope)
        const one = yield* b.issue({ threadId: "t", providerInstanceId: "p" })
        yield* b.issue({ threadId: "u", providerInstanceId: "p" })
        yield* Scope.close(scopeA, Exit.void)
        assert.deepStrictEqual(onA.reasons(), ["shutdown", "shutdown"])
        assert.strictEqual(yield* reasonOf(b.resolve(token(one))), "revoked")
        assert.strictEqual((yield* b.list).length, 0)
        void a
      }).pipe(Effect.scoped))
  })

  describe("what reaches Redis", () => {
    it.effect("every key carries a TTL, and no key or value holds token material", () =>
      Effect.gen(function*() {
        const keyPrefix = freshPrefix()
        const registry = yield* replica(
          { keyPrefix, idleTimeout: "10 minutes", sweepInterval: "1 minute" },
          yield* Effect.scope
        )
        const tokens: Array<string> = []
        const issued = []
        for (let i = 0; i < 8; i++) {
          const credential = yield* registry.issue({
            threadId: `thread-${i % 3}`,
            providerInstanceId: `p${i}`,
            capabilities: i % 2 === 0 ? ["tools", "admin"] : []
          })
          issued.push(credential)
          tokens.push(token(credential))
        }
        // A full session: lookups, a call in flight, touches, every way out.
        for (const t of tokens) yield* registry.resolve(t)
        const end = yield* registry.beginCall(issued[0]!.credentialId)
        yield* registry.touch("thread-1")
        yield* registry.revoke(issued[1]!.credentialId)
        yield* registry.revokeProviderSession(issued[2]!.providerSessionId)
        yield* registry.revokeThread("thread-2")
        yield* registry.issue({ threadId: "thread-0", providerInstanceId: "p0" }).pipe(
          Effect.tap((c) => Effect.sync(() => tokens.push(token(c))))
        )
        end()
        yield* advanceRedis(minutes(11))
        yield* registry.resolve(tokens[0]!).pipe(Effect.ignore)
        // Live ones too, so every kind of key is there.
        const late = yield* registry.issue({ threadId: "late", providerInstanceId: "p", capabilities: ["x"] })
        tokens.push(token(late))
        yield* registry.resolve(token(late))

        const client = yield* inspector
        const keys: Array<string> = []
        for (let cursor = "0";;) {
          const page = yield* Effect.promise(() => client.scan(cursor, { MATCH: `{${keyPrefix}}:*`, COUNT: 1000 }))
          keys.push(...page.keys)
          cursor = String(page.cursor)
          if (cursor === "0") break
        }
        // Credentials and tombstones, threads, the deadline index, the burial queue.
        for (const kind of [":c:", ":t:", "}:d", "}:q"]) {
          assert.isTrue(keys.some((key) => key.includes(kind)), `no ${kind} key`)
        }
        const dump: Array<string> = []
        for (const key of keys) {
          const ttl = yield* Effect.promise(() => client.pTTL(key))
          assert.isAbove(ttl, 0, `${key} has no TTL`)
          const type = yield* Effect.promise(() => client.type(key))
          const value = yield* Effect.promise((): Promise<unknown> =>
            type === "hash"
              ? client.hGetAll(key)
              : type === "set"
              ? client.sMembers(key)
              : type === "zset"
              ? client.zRangeWithScores(key, 0, -1)
              : type === "list"
              ? client.lRange(key, 0, -1)
              : client.get(key)
          )
          dump.push(key, JSON.stringify(value))
        }
        const text = dump.join("\n")
        for (const t of tokens) {
          // The token, its random body, and any long piece of it.
          for (const piece of [t, t.slice(6), t.slice(6, 26), t.slice(20, 40)]) {
            assert.notInclude(text, piece, "token material in Redis")
          }
          // Nor its whole digest, in any common form.
          const digest = Buffer.from(BearerToken.digest(t), "latin1")
          for (const form of [digest.toString("base64url"), digest.toString("hex"), digest.toString("base64")]) {
            assert.notInclude(text, form, "a whole digest in Redis")
          }
        }
        // What is there is metadata: ids and threads, and tombstones that say why.
        assert.include(text, late.credentialId.slice("cred_".length))
        assert.include(text, "late")
        assert.include(text, "!session-stopped|")
      }).pipe(Effect.scoped))
  })

  describe("text as issued", () => {
    it.effect("ids, threads and capabilities that are not ASCII or hold the separator come back as issued", () =>
      Effect.gen(function*() {
        const registry = yield* replica({ keyPrefix: freshPrefix() }, yield* Effect.scope)
        for (
          const request of [
            { threadId: "t|é🙂", providerInstanceId: "p|x", capabilities: ["a|b", "ü", "12|"] },
            { threadId: "3|abc", providerInstanceId: "ascii", capabilities: [] },
            { threadId: "日本", providerInstanceId: "|", capabilities: undefined }
          ]
        ) {
          const credential = yield* registry.issue(request)
          const expected = {
            threadId: request.threadId,
            providerInstanceId: request.providerInstanceId,
            capabilities: request.capabilities ?? []
          }
          const pick = (info: Credential.CredentialInfo) => ({
            threadId: info.threadId,
            providerInstanceId: info.providerInstanceId,
            capabilities: [...info.capabilities]
          })
          assert.deepStrictEqual(pick(yield* registry.resolve(token(credential))), expected)
          assert.deepStrictEqual(pick(Option.getOrThrow(yield* registry.get(credential.credentialId))), expected)
          const listed = (yield* registry.list).find((info) => info.credentialId === credential.credentialId)!
          assert.deepStrictEqual(pick(listed), expected)
        }
      }).pipe(Effect.scoped))
  })

  describe("cost", () => {
    it.effect("resolve is exactly one round trip; a malformed token costs none", () =>
      Effect.gen(function*() {
        const registry = yield* replica({ keyPrefix: freshPrefix() }, yield* Effect.scope)
        const client = yield* inspector
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* registry.resolve(token(credential))
        yield* settleRedis

        let before = yield* commandCounts(client)
        yield* registry.resolve(token(credential))
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), { fcall: 1 })

        before = yield* commandCounts(client)
        const real = token(credential)
        const flipped = real.slice(0, -1) + (real.endsWith("A") ? "B" : "A")
        for (const bad of ["", "x", "Bearer " + real, real.slice(0, -2), flipped, "x".repeat(100_000)]) {
          assert.include(["missing", "malformed"], yield* reasonOf(registry.resolve(bad)))
        }
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), {})

        // A well-formed unknown token is one round trip too.
        before = yield* commandCounts(client)
        assert.strictEqual(yield* reasonOf(registry.resolve(BearerToken.mint())), "unknown")
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), { fcall: 1 })
      }).pipe(Effect.scoped))
  })

  describe("a server without functions", () => {
    it.effect("runs each operation as a script by its SHA, with the same answers", () =>
      Effect.gen(function*() {
        const client = yield* inspector
        // A user that may not load functions, as on a server before Redis 7.
        yield* Effect.promise(() =>
          client.sendCommand(["ACL", "SETUSER", "nofunctions", "on", ">secret-for-tests", "~*", "&*", "+@all", "-function", "-fcall"])
        )
        const url = server.current().url.replace("redis://", "redis://nofunctions:secret-for-tests@")
        const registry = yield* Layer.buildWithScope(
          McpSessionRegistry.layerRedis({ keyPrefix: freshPrefix() }).pipe(Layer.provide(NodeRedis.layer({ url }))),
          yield* Effect.scope
        ).pipe(Effect.map((context) => Context.get(context, Registry)))
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* settleRedis
        const before = yield* commandCounts(client)
        assert.strictEqual((yield* registry.resolve(token(credential))).threadId, "t")
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), { evalsha: 1 })
        assert.isTrue(yield* registry.revoke(credential.credentialId))
        assert.strictEqual(yield* reasonOf(registry.resolve(token(credential))), "revoked")
      }).pipe(Effect.scoped))
  })

  describe("calls in flight", () => {
    it.effect("a short call's end costs no round trip; a longer one's is a use at its end", () =>
      Effect.gen(function*() {
        // 1/64 of 64 s: calls shorter than a second record no second use.
        const registry = yield* replica({ keyPrefix: freshPrefix(), idleTimeout: "64 seconds" }, yield* Effect.scope)
        const client = yield* inspector
        const credential = yield* registry.issue({ threadId: "t", providerInstanceId: "p" })
        yield* registry.resolve(token(credential))
        yield* settleRedis

        let before = yield* commandCounts(client)
        const short = yield* registry.beginCall(credential.credentialId)
        yield* advanceRedis(900, 900)
        short()
        yield* settleRedis
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), {})

        before = yield* commandCounts(client)
        const long = yield* registry.beginCall(credential.credentialId)
        yield* advanceRedis(1_000, 1_000)
        long()
        yield* settleRedis
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), { fcall: 1 })
        const info = Option.getOrThrow(yield* registry.get(credential.credentialId))
        assert.strictEqual(info.lastUsedAt, 1_900)
      }).pipe(Effect.scoped))
  })

  describe("local cache (opt-in)", () => {
    it.effect("answers from memory within maxStaleness; a revoke elsewhere holds once it has passed", () =>
      Effect.gen(function*() {
        const keyPrefix = freshPrefix()
        const cached = yield* replica({ keyPrefix, localCache: { maxStaleness: "5 seconds" } }, yield* Effect.scope)
        const other = yield* replica({ keyPrefix }, yield* Effect.scope)
        const client = yield* inspector
        const credential = yield* other.issue({ threadId: "t", providerInstanceId: "p" })
        yield* cached.resolve(token(credential))
        yield* settleRedis
        const before = yield* commandCounts(client)
        yield* cached.resolve(token(credential))
        assert.deepStrictEqual(ran(before, yield* commandCounts(client)), {}, "a cached answer costs no round trip")

        // Whatever pub/sub delivers, past the bound the revoke holds here too.
        yield* other.revoke(credential.credentialId)
        yield* advanceRedis(5_001)
        assert.strictEqual(yield* reasonOf(cached.resolve(token(credential))), "revoked")

        // And pub/sub drops the entry well before the bound when it arrives.
        const second = yield* other.issue({ threadId: "u", providerInstanceId: "p" })
        yield* cached.resolve(token(second))
        yield* other.revoke(second.credentialId)
        let refused = false
        for (let i = 0; i < 200 && !refused; i++) {
          refused = Exit.isFailure(yield* Effect.exit(cached.resolve(token(second))))
          if (!refused) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        }
        assert.isTrue(refused)
      }).pipe(Effect.scoped))

    it.effect("rejects options that cannot work", () =>
      Effect.gen(function*() {
        for (
          const options of <ReadonlyArray<McpSessionRegistry.RedisOptions>> [
            { keyPrefix: "" },
            { keyPrefix: "a{b}" },
            { storeTimeout: 0 },
            { storeTimeout: "forever" as never },
            { localCache: { maxStaleness: 0 } },
            { localCache: { maxStaleness: "1 second", maxEntries: -1 } },
            { revokeOnShutdown: "yes" as never }
          ]
        ) {
          const exit = yield* Effect.exit(replica(options, yield* Effect.scope))
          assert.isTrue(Exit.isFailure(exit), JSON.stringify(options))
          const failure = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
          assert.strictEqual(failure?._tag === "Fail" ? (failure.error as { _tag: string })._tag : "", "RegistryConfigError")
        }
      }).pipe(Effect.scoped))
  })
})
