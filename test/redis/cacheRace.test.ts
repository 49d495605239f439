/**
 * The local cache against a removal's message that overtakes a lookup's
 * answer: pub/sub has its own connection, so a revoke on another replica,
 * made after Redis answered a lookup here, can be heard before that answer
 * arrives. The answer must not then be cached, or the revoked token would
 * resolve here for up to `maxStaleness`.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Redacted, Scope } from "effect"
import { McpSessionRegistry } from "../../src/index.ts"
import { freshPrefix, redisServer } from "../support/stores.ts"

const server = redisServer()
const Registry = McpSessionRegistry.McpSessionRegistry

type Client = NodeRedis.NodeRedis["Service"]["client"]

/**
 * NodeRedis whose `resolve` replies are held back (after Redis answered)
 * while `gate` is set: the answer is on its way, not yet here.
 */
const heldBack = (gate: { held: Promise<void> | undefined; answered: () => void }) =>
  Layer.effectContext(Effect.gen(function*() {
    const context = yield* Layer.build(NodeRedis.layer({ url: server.current().url }))
    const service = Context.get(context, NodeRedis.NodeRedis)
    const client = service.client
    const sendCommand = (args: Array<string>, options?: unknown) => {
      const reply = (client.sendCommand as (a: Array<string>, o?: unknown) => Promise<unknown>)(args, options)
      const held = gate.held
      if (held === undefined || args[0] !== "FCALL" || !String(args[1]).endsWith("_resolve")) return reply
      return reply.then(async (value) => {
        gate.answered()
        await held
        return value
      })
    }
    const wrapped = new Proxy(client, {
      get: (target, key) => {
        if (key === "sendCommand") return sendCommand
        const value = Reflect.get(target, key, target)
        return typeof value === "function" ? value.bind(target) : value
      }
    }) as Client
    return Context.add(context, NodeRedis.NodeRedis, { ...service, client: wrapped })
  }))

const replica = (options: McpSessionRegistry.RedisOptions, redis: Layer.Layer<any, any>, scope: Scope.Scope) =>
  Effect.map(
    Layer.buildWithScope(McpSessionRegistry.layerRedis(options).pipe(Layer.provide(redis)), scope),
    (context) => Context.get(context, Registry)
  )

describe("Redis store: local cache vs an overtaking revoke", () => {
  it.effect("a lookup answered before a revoke heard while its answer was on its way is not cached", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      let release!: () => void
      const answered = yield* Deferred.make<void>()
      const gate: { held: Promise<void> | undefined; answered: () => void } = {
        held: undefined,
        answered: () => Deferred.doneUnsafe(answered, Effect.void)
      }
      const cached = yield* replica(
        { keyPrefix, storeTimeout: "15 seconds", localCache: { maxStaleness: "1 minute" } },
        heldBack(gate),
        yield* Effect.scope
      )
      const other = yield* replica(
        { keyPrefix, storeTimeout: "15 seconds" },
        NodeRedis.layer({ url: server.current().url }),
        yield* Effect.scope
      )
      const heard = yield* Deferred.make<void>()
      yield* cached.onRevoke(() => Deferred.succeed(heard, undefined).pipe(Effect.asVoid))
      const credential = yield* other.issue({ threadId: "t", providerInstanceId: "p" })
      const token = Redacted.value(credential.token)

      gate.held = new Promise<void>((resolve) => (release = resolve))
      const lookup = yield* Effect.forkChild(cached.resolve(token))
      yield* Deferred.await(answered)
      // Redis answered "live"; the revoke comes after, and its message is heard
      // here before that answer is.
      assert.isTrue(yield* other.revoke(credential.credentialId))
      yield* Deferred.await(heard)
      gate.held = undefined
      release()
      const scope = yield* Fiber.join(lookup)
      assert.strictEqual(scope.credentialId, credential.credentialId)

      const refused = yield* Effect.flip(cached.resolve(token))
      assert.strictEqual(refused.reason, "revoked")
    }).pipe(Effect.scoped))
})
