/**
 * The registry's stores, for suites that run against each: the memory store
 * and the Redis store on a throwaway `redis-server` this module starts for
 * the test file (and stops after it).
 *
 * Physics differ in one way the suites must respect: the Redis store's calls
 * are real I/O, which a `TestClock` does not wait for. `advance` moves the
 * clock in steps and lets the store's calls (the sweeper's included) finish
 * after each; `settle` only waits for them.
 */
import { NodeRedis } from "@effect/platform-node"
import { Context, Duration, Effect, Fiber, Layer } from "effect"
import type { Scope } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { McpSessionRegistry } from "../../src/index.ts"
import { pendingCalls } from "../../src/redis/registry.ts"
import { type RedisServer, startRedisServer } from "./redis.ts"

export interface StoreUnderTest {
  readonly name: "memory" | "redis" | "redis, two replicas"
  /** A registry layer on this store; each call on Redis is a fresh, independent prefix. */
  readonly layer: (
    options?: McpSessionRegistry.RedisOptions
  ) => Layer.Layer<McpSessionRegistry.McpSessionRegistry, unknown>
  /** `McpSessionRegistry.make` on this store, in the current scope. */
  readonly make: (
    options?: McpSessionRegistry.RedisOptions
  ) => Effect.Effect<McpSessionRegistry.McpSessionRegistry["Service"], unknown, Scope.Scope>
  /** Waits until no store call is in flight (at once on memory). */
  readonly settle: Effect.Effect<void>
  /** `TestClock.adjust`, in steps of at most `step` ms, settling after each. */
  readonly advance: (duration: Duration.Input, step?: number) => Effect.Effect<void>
}

const realPause = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Waits until no Redis store call is in flight in this process. */
export const settleRedis: Effect.Effect<void> = Effect.gen(function*() {
  // Two quiet turns in a row: a call's end can start hooks or another call.
  let quiet = 0
  for (let i = 0; i < 4000 && quiet < 3; i++) {
    yield* Effect.yieldNow
    yield* realPause
    quiet = pendingCalls() === 0 ? quiet + 1 : 0
  }
})

let prefixes = 0

// The machine running the suite may be loaded: a store call timing out there
// would fail an operation the test means to succeed. Outage tests set their own.
const testStoreTimeout = "15 seconds"

/** A fresh key prefix: an independent registry on a shared server. */
export const freshPrefix = () => `test${process.pid}x${++prefixes}`

/** `TestClock.adjust` in steps, letting Redis calls finish after each. */
export const advanceRedis = (duration: Duration.Input, step = 60_000): Effect.Effect<void> =>
  Effect.gen(function*() {
    const millis = Duration.toMillis(Duration.fromInputUnsafe(duration))
    yield* settleRedis
    for (let left = millis; left > 0; left -= step) {
      yield* TestClock.adjust(Math.min(step, left))
      yield* settleRedis
    }
  })

/**
 * Advances the clock by `step` until `fiber` is done, then joins it: a
 * store's I/O may start the timers the fiber waits for only after a first
 * step (once on memory).
 */
export const advanceUntilDone = <A, E>(
  store: StoreUnderTest,
  fiber: Fiber.Fiber<A, E>,
  step: Duration.Input
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* store.advance(step)
    if (fiber.pollUnsafe() === undefined) {
      return yield* Effect.die(new Error(`still running after 500 steps of ${Duration.format(Duration.fromInputUnsafe(step))}`))
    }
    return yield* Fiber.join(fiber)
  })

/** Both stores; registers the file's `beforeAll`/`afterAll` that run the Redis server. */
export const stores = (): ReadonlyArray<StoreUnderTest> => {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterAll(async () => {
    await server?.stop()
  })
  const url = () => {
    if (server === undefined) throw new Error("redis-server did not start")
    return server.url
  }
  const prefix = freshPrefix
  const memory: StoreUnderTest = {
    name: "memory",
    layer: (options) => McpSessionRegistry.layer(options),
    make: (options) => McpSessionRegistry.make(options),
    settle: Effect.yieldNow,
    advance: (duration) => TestClock.adjust(duration)
  }
  const redis: StoreUnderTest = {
    name: "redis",
    layer: (options) =>
      Layer.suspend(() =>
        McpSessionRegistry.layerRedis({ revokeOnShutdown: true, storeTimeout: testStoreTimeout, keyPrefix: prefix(), ...options }).pipe(
          Layer.provide(NodeRedis.layer({ url: url() }))
        )
      ),
    make: (options) =>
      Effect.suspend(() =>
        Effect.flatMap(
          Layer.build(NodeRedis.layer({ url: url() })),
          (context) =>
            McpSessionRegistry.makeRedis({ revokeOnShutdown: true, storeTimeout: testStoreTimeout, keyPrefix: prefix(), ...options }).pipe(
              Effect.provide(context)
            )
        )
      ),
    settle: settleRedis,
    advance: advanceRedis
  }
  // Two replicas on one prefix, each with its own client, behind one service
  // that sends every call to the next replica in turn.
  const replicas: StoreUnderTest = {
    name: "redis, two replicas",
    layer: (options) => Layer.effect(McpSessionRegistry.McpSessionRegistry, replicas.make(options)),
    make: (options) =>
      Effect.gen(function*() {
        const keyPrefix = prefix()
        const build = Effect.flatMap(
          Layer.build(NodeRedis.layer({ url: url() })),
          (context) =>
            McpSessionRegistry.makeRedis({ revokeOnShutdown: true, storeTimeout: testStoreTimeout, ...options, keyPrefix }).pipe(Effect.provide(context))
        )
        const pair = [yield* build, yield* build] as const
        let turn = 0
        const next = () => pair[turn++ & 1]!
        const routed: McpSessionRegistry.McpSessionRegistry["Service"] = {
          issue: (request) => next().issue(request),
          issueScoped: (request) => next().issueScoped(request),
          resolve: (token) => next().resolve(token),
          touch: (threadId) => next().touch(threadId),
          revoke: (id) => next().revoke(id),
          revokeProviderSession: (id) => next().revokeProviderSession(id),
          revokeThread: (threadId) => next().revokeThread(threadId),
          revokeAll: Effect.suspend(() => next().revokeAll),
          list: Effect.suspend(() => next().list),
          get: (id) => next().get(id),
          onRevoke: (hook) => pair[0].onRevoke(hook),
          sweep: Effect.suspend(() => next().sweep),
          beginCall: (id) => next().beginCall(id),
          reportPower: (event) => next().reportPower(event)
        }
        return routed
      }),
    settle: settleRedis,
    advance: advanceRedis
  }
  lastReplicas = replicas
  return [memory, redis]
}

let lastReplicas: StoreUnderTest | undefined

/**
 * Two Redis replicas behind one service, calls spread over both; only
 * after `stores()` in the same file (it runs the server).
 */
export const replicaPair = (): StoreUnderTest => {
  if (lastReplicas === undefined) throw new Error("call stores() first")
  return lastReplicas
}

/** The URL of a Redis server for files that need only Redis. */
export const redisServer = (options?: { readonly persistent?: boolean }): { readonly current: () => RedisServer } => {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await startRedisServer(options)
  })
  afterAll(async () => {
    await server?.stop()
  })
  return {
    current: () => {
      if (server === undefined) throw new Error("redis-server did not start")
      return server
    }
  }
}

/**
 * One replica on `server`: its own client and registry, open until `scope`
 * closes. A fresh prefix and a generous store timeout unless `options` say
 * otherwise.
 */
export const redisReplica = (
  server: { readonly current: () => RedisServer },
  options: McpSessionRegistry.RedisOptions,
  scope: Scope.Scope
): Effect.Effect<McpSessionRegistry.McpSessionRegistry["Service"], unknown> =>
  Effect.map(
    Layer.buildWithScope(
      McpSessionRegistry.layerRedis({ storeTimeout: "15 seconds", keyPrefix: freshPrefix(), ...options }).pipe(
        Layer.provide(NodeRedis.layer({ url: server.current().url }))
      ),
      scope
    ),
    (context) => Context.get(context, McpSessionRegistry.McpSessionRegistry)
  )
