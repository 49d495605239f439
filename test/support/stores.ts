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
import { Duration, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { McpSessionRegistry } from "../../src/index.ts"
import { pendingCalls } from "../../src/redis/registry.ts"
import { type RedisServer, startRedisServer } from "./redis.ts"

export interface StoreUnderTest {
  readonly name: "memory" | "redis"
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

const settleRedis: Effect.Effect<void> = Effect.gen(function*() {
  // Two quiet turns in a row: a call's end can start hooks or another call.
  let quiet = 0
  for (let i = 0; i < 4000 && quiet < 3; i++) {
    yield* Effect.yieldNow
    yield* realPause
    quiet = pendingCalls() === 0 ? quiet + 1 : 0
  }
})

let prefixes = 0

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
  const prefix = () => `test${process.pid}x${++prefixes}`
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
        McpSessionRegistry.layerRedis({ revokeOnShutdown: true, keyPrefix: prefix(), ...options }).pipe(
          Layer.provide(NodeRedis.layer({ url: url() }))
        )
      ),
    make: (options) =>
      Effect.suspend(() =>
        Effect.flatMap(
          Layer.build(NodeRedis.layer({ url: url() })),
          (context) =>
            McpSessionRegistry.makeRedis({ revokeOnShutdown: true, keyPrefix: prefix(), ...options }).pipe(
              Effect.provide(context)
            )
        )
      ),
    settle: settleRedis,
    advance: (duration, step = 60_000) =>
      Effect.gen(function*() {
        const millis = Duration.toMillis(Duration.fromInputUnsafe(duration))
        yield* settleRedis
        for (let left = millis; left > 0; left -= step) {
          yield* TestClock.adjust(Math.min(step, left))
          yield* settleRedis
        }
      })
  }
  return [memory, redis]
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
